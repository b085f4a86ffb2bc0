variable "name" {
  type        = string
  description = "Name prefix (name_prefix, for example churn-dev); the instance is `<name>-mlflow`."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter (the name_prefix, e.g. churn-dev)."
  }
}

variable "vpc_id" {
  type        = string
  description = "ID of the VPC the database runs in."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets for the database, in at least two zones."

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two zones."
  }
}

variable "allowed_security_group_ids" {
  type        = list(string)
  description = "Security groups allowed to connect on 5432 (the cluster's, so MLflow pods can reach it)."
}

variable "engine_version" {
  type        = string
  description = "PostgreSQL major version (for example 17); minor upgrades arrive in the maintenance window without a plan diff."

  validation {
    condition     = can(regex("^[0-9]{2}$", var.engine_version))
    error_message = "engine_version must be a major version only, for example 17: a pinned minor would be downgraded by the next plan after AWS upgrades it."
  }
}

variable "instance_class" {
  type        = string
  description = "RDS instance class, for example db.t4g.micro."

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "instance_class must be an RDS class such as db.t4g.small."
  }
}

variable "allocated_storage_gib" {
  type        = number
  description = "Initial storage, GiB (gp3); storage autoscales up to four times this."
  default     = 20

  validation {
    condition     = var.allocated_storage_gib >= 20 && var.allocated_storage_gib <= 16384
    error_message = "allocated_storage_gib must be between 20 and 16384."
  }
}

variable "multi_az" {
  type        = bool
  description = "Keep a synchronous standby in a second zone."
  default     = false
}

variable "backup_retention_days" {
  type        = number
  description = "Days of automated backups (point-in-time recovery window)."
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to delete the instance until this is turned off."
  default     = true
}

variable "password_version" {
  type        = number
  description = "Bump to rotate the password: a new one is generated and written to RDS and Secrets Manager in the same apply."
  default     = 1

  validation {
    condition     = var.password_version >= 1 && floor(var.password_version) == var.password_version
    error_message = "password_version must be a positive whole number."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes them."
  default     = {}
}
