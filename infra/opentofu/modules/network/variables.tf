variable "name" {
  type        = string
  description = "Name prefix for every resource, `churn-<env>`."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter (the name_prefix, e.g. churn-dev)."
  }
}

variable "cidr_block" {
  type        = string
  description = "IPv4 CIDR of the VPC; split into three private /19s and three public /22s."

  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && can(regex("/(8|9|1[0-6])$", var.cidr_block))
    error_message = "cidr_block must be a valid IPv4 CIDR of /16 or larger."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Exactly three availability zones of the region, one private and one public subnet each."

  validation {
    condition     = length(var.availability_zones) == 3 && length(distinct(var.availability_zones)) == 3
    error_message = "availability_zones must list three distinct zones."
  }
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway for all zones (cheaper, one zone's outage cuts egress) instead of one per zone."
  default     = false
}

variable "flow_log_retention_days" {
  type        = number
  description = "Days to keep VPC flow logs in CloudWatch Logs."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a retention CloudWatch Logs accepts (for example 30, 90, 365)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes them."
  default     = {}
}
