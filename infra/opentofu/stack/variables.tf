variable "environment" {
  type        = string
  description = "Environment this root builds: dev, staging or prod (the same word as clusters/<env> and the overlays)."

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every AWS name in this environment (cluster, buckets, roles, database, secrets), for example churn-dev. S3 names are global: a fork picks its own (acme-churn-dev)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "account_id" {
  type        = string
  description = "AWS account the environment lives in; the provider refuses any other."

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "region" {
  type        = string
  description = "AWS region, for example eu-west-1."

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Three availability zones of the region."

  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "availability_zones must list three zones."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "IPv4 CIDR of the VPC (a /16), distinct per environment so they can be peered later."

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && endswith(var.vpc_cidr, "/16")
    error_message = "vpc_cidr must be a /16 such as 10.10.0.0/16."
  }
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway for all zones instead of one per zone."
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version of the cluster, pinned."

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as 1.33."
  }
}

variable "addon_versions" {
  type        = map(string)
  description = "Pinned EKS add-on versions for kubernetes_version: vpc-cni, coredns, kube-proxy, eks-pod-identity-agent, aws-ebs-csi-driver."
}

variable "public_access_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the API endpoint from the internet; empty keeps it private only."
  default     = []
}

variable "admin_principal_arns" {
  type        = list(string)
  description = "IAM roles or users granted cluster admin through EKS access entries (break-glass, platform team); whoever runs the apply gets an entry too."
  default     = []
}

variable "node_instance_types" {
  type        = list(string)
  description = "Instance types of the managed node group."
}

variable "node_capacity_type" {
  type        = string
  description = "ON_DEMAND or SPOT."
}

variable "node_scaling" {
  type = object({
    min_size     = number
    desired_size = number
    max_size     = number
  })
  description = "Minimum, desired and maximum node count."
}

variable "log_retention_days" {
  type        = number
  description = "Days to keep control-plane and VPC flow logs."
}

variable "db_engine_version" {
  type        = string
  description = "PostgreSQL major version of the MLflow and prediction-store database (for example 17); minor upgrades happen in the maintenance window."
}

variable "db_instance_class" {
  type        = string
  description = "RDS instance class of the MLflow database."
}

variable "db_multi_az" {
  type        = bool
  description = "Run the MLflow database with a standby in a second zone."
}

variable "db_backup_retention_days" {
  type        = number
  description = "Days of automated backups of the MLflow database."
}

variable "db_deletion_protection" {
  type        = bool
  description = "Protect the MLflow database from deletion."
}

variable "bucket_force_destroy" {
  type        = bool
  description = "Let `tofu destroy` empty and delete the buckets (throwaway environments only)."
  default     = false
}

variable "ecr_repositories" {
  type        = set(string)
  description = "ECR repositories envs/shared creates, which the image-building environment's CI role may push to."
  default     = ["churn-api", "churn-workflows"]
}

variable "github_repository" {
  type        = string
  description = "GitHub repository, owner/name, whose jobs may assume this environment's CI role; also where Argo CD syncs from unless gitops_repo_url says otherwise."
}

variable "github_environment" {
  type        = string
  description = "GitHub environment whose jobs may assume the CI role; null: the environment's own name (dev, staging, prod)."
  default     = null
}

variable "github_can_push_images" {
  type        = bool
  description = "Let this environment's CI role push images to ECR: true in dev only, where images are built; the others receive them by digest."
  default     = false
}

variable "model_source_name_prefix" {
  type        = string
  description = "name_prefix of the environment models are promoted from into this one (staging: dev's, prod: staging's); null in dev."
  default     = null

  validation {
    condition     = var.model_source_name_prefix == null || can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", coalesce(var.model_source_name_prefix, "x")))
    error_message = "model_source_name_prefix must be null or another environment's name_prefix."
  }
}

variable "gitops_repo_url" {
  type        = string
  description = "Git URL Argo CD syncs from; null: https://github.com/<github_repository>.git."
  default     = null
}

variable "gitops_repo_revision" {
  type        = string
  description = "Branch, tag or commit Argo CD syncs from."
  default     = "main"
}

variable "ingress_domain_name" {
  type        = string
  description = "Host name of churn-api's ALB; an ACM certificate is created for it and validated in ingress_route53_zone_id. Null: none."
  default     = null
}

variable "ingress_route53_zone_id" {
  type        = string
  description = "Route 53 hosted zone of ingress_domain_name, for the certificate's DNS validation."
  default     = null
}

variable "ingress_certificate_arn" {
  type        = string
  description = "An existing ACM certificate for churn-api's HTTPS listener, instead of ingress_domain_name."
  default     = null
}

variable "waf_rate_limit" {
  type        = number
  description = "Requests per five minutes one client address may send to churn-api's ALB before WAF blocks it; null: no web ACL."
  default     = null
}

variable "argocd_chart_version" {
  type        = string
  description = "argo-cd chart version installed once; equal to the one platform/argocd/argocd.yaml pins."
}

variable "argocd_apps_chart_version" {
  type        = string
  description = "argocd-apps chart version that creates the root Application and its AppProject."
}

variable "out_of_band_secrets" {
  type        = set(string)
  description = "Secrets Manager entries created empty under <name_prefix>/, whose values are set by hand: the GitHub App of the workflows' promotions, the Rollouts notifications' token, Argo CD's repository credentials (a GitHub App), and the OIDC clients of the Argo CD dashboard and the Argo Workflows UI."
  default     = ["github/argocd-repository", "github/churn-workflows", "github/rollouts-notifications", "sso/argo-workflows", "sso/argocd"]
}

variable "platform_secrets_prefix" {
  type        = string
  description = "Prefix of the platform-wide secrets envs/shared creates, which External Secrets may also read."
  default     = "churn-platform"
}
