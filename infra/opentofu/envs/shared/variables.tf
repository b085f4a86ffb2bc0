variable "account_id" {
  type        = string
  description = "AWS account every environment lives in; the provider refuses any other."

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "region" {
  type        = string
  description = "AWS region of the registry, for example eu-west-1."

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "ecr_repositories" {
  type        = set(string)
  description = "ECR repositories, shared by every environment."
  default     = ["churn-api", "churn-workflows"]
}

variable "create_autoscaling_service_linked_role" {
  type        = bool
  description = "Create AWSServiceRoleForAutoScaling; false where the account has it already (any earlier Auto Scaling group made it)."
  default     = true
}

variable "platform_secrets" {
  type        = set(string)
  description = "Secrets Manager entries every cluster reads under one name (their values are set by hand); each environment's External Secrets role may read below platform_secrets_prefix."
  default     = ["churn-platform/alertmanager/receivers"]
}
