variable "name_prefix" {
  type        = string
  description = "Prefix of every name, for example churn-dev. Roles are named <name_prefix>-<service account>."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "cluster_name" {
  type        = string
  description = "Name of the EKS cluster; the Cluster Autoscaler may only resize the Auto Scaling groups tagged as this cluster's."

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must be an EKS cluster name."
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

variable "platform_secrets_prefix" {
  type        = string
  description = "Prefix of the account's platform-wide secrets (envs/shared), which External Secrets may read besides this environment's."
  default     = "churn-platform"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.platform_secrets_prefix))
    error_message = "platform_secrets_prefix must be 3-32 lowercase letters, digits or hyphens."
  }
}

variable "github_repository" {
  type        = string
  description = "GitHub repository, `owner/name`, whose workflows may assume the CI role."

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must be owner/name, without wildcards."
  }
}

variable "github_environment" {
  type        = string
  description = "GitHub environment whose jobs may assume the CI role (token subject repo:<repo>:environment:<this>); its protection rules choose branches and reviewers."

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+$", var.github_environment))
    error_message = "github_environment must be an environment name, without wildcards."
  }
}

variable "github_can_push_images" {
  type        = bool
  description = "Let the CI role push to ECR. True for dev only: images are built once and promoted by digest."
  default     = false
}

variable "model_source_bucket_arn" {
  type        = string
  description = "Models bucket of the previous environment (staging: dev's, prod: staging's). When set, CI may copy content-addressed model artifacts from it into this environment's models bucket (the promote workflow); null in dev."
  default     = null

  validation {
    condition     = var.model_source_bucket_arn == null || can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]*-models$", var.model_source_bucket_arn))
    error_message = "model_source_bucket_arn must be null or the ARN of another environment's <name_prefix>-models bucket."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes them."
  default     = {}
}
