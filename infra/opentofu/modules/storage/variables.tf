variable "name_prefix" {
  type        = string
  description = "Prefix of every name, for example churn-dev. Buckets are named <name_prefix>-<purpose>; S3 names are global, so a fork picks its own prefix."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
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
