variable "environment" {
  type        = string
  description = "Environment: dev, staging or prod. Roles are named churn-<environment>-<service account>."

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "oidc_provider_arn" {
  type        = string
  description = "ARN of the cluster's IAM OIDC provider (IRSA)."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN."
  }
}

variable "oidc_issuer" {
  type        = string
  description = "The cluster's OIDC issuer without https://, the prefix of the :sub and :aud condition keys."

  validation {
    condition     = !startswith(var.oidc_issuer, "https://")
    error_message = "oidc_issuer must not start with https://."
  }
}

variable "bucket_arns" {
  type        = map(string)
  description = "Bucket ARN by purpose, from the storage module: data, models, mlflow-artifacts, argo-artifacts."

  validation {
    condition     = length(setsubtract(["data", "models", "mlflow-artifacts", "argo-artifacts"], keys(var.bucket_arns))) == 0
    error_message = "bucket_arns must hold data, models, mlflow-artifacts and argo-artifacts."
  }
}

variable "bucket_kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the buckets."
}

variable "models_prefix" {
  type        = string
  description = "Key prefix of the serving artifacts in the models bucket; churn-api reads only below it."
  default     = "churn-model/"

  validation {
    condition     = endswith(var.models_prefix, "/") && !startswith(var.models_prefix, "/")
    error_message = "models_prefix must end with / and not start with /."
  }
}

variable "ecr_repository_arns" {
  type        = list(string)
  description = "ARNs of the ECR repositories CI may push to."

  validation {
    condition     = length(var.ecr_repository_arns) > 0 && alltrue([for a in var.ecr_repository_arns : can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/", a))])
    error_message = "ecr_repository_arns must be ECR repository ARNs."
  }
}

variable "database_secret_arn" {
  type        = string
  description = "ARN of the Secrets Manager secret holding the MLflow database credentials."
}

variable "database_kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the database credentials secret."
}

variable "github_repository" {
  type        = string
  description = "GitHub repository, `owner/name`, whose workflows may assume the CI role."

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must be owner/name, without wildcards."
  }
}

variable "github_branch" {
  type        = string
  description = "Branch whose workflow runs may assume the CI role (pushes to it build and push images)."
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.github_branch))
    error_message = "github_branch must be a branch name, without wildcards."
  }
}

variable "model_source_bucket_arn" {
  type        = string
  description = "Models bucket of the previous environment (staging: dev's, prod: staging's). When set, CI may copy content-addressed model artifacts from it into this environment's models bucket (the promote workflow); null in dev."
  default     = null

  validation {
    condition     = var.model_source_bucket_arn == null || can(regex("^arn:aws[a-z-]*:s3:::churn-(dev|staging)-models$", var.model_source_bucket_arn))
    error_message = "model_source_bucket_arn must be null or the ARN of churn-dev-models or churn-staging-models."
  }
}

variable "create_github_oidc_provider" {
  type        = bool
  description = "Create the account's GitHub OIDC provider. It exists once per account: true in the first environment applied, false in the others."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes them."
  default     = {}
}
