variable "environment" {
  type        = string
  description = "Environment: dev, staging or prod. Buckets are named churn-<environment>-<purpose>."

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "noncurrent_version_days" {
  type        = number
  description = "Days a replaced or deleted object version is kept before it expires."
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}

variable "argo_artifact_days" {
  type        = number
  description = "Days Argo Workflows step artifacts (intermediate outputs, logs) are kept."
  default     = 30

  validation {
    condition     = var.argo_artifact_days >= 1
    error_message = "argo_artifact_days must be at least 1."
  }
}

variable "force_destroy" {
  type        = bool
  description = "Let `tofu destroy` delete non-empty buckets. Keep false outside throwaway environments."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes them."
  default     = {}
}
