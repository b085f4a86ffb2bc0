variable "name" {
  type        = string
  description = "Name prefix (name_prefix, for example churn-prod) of the web ACL and its log group."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter (the name_prefix, e.g. churn-prod)."
  }
}

variable "domain_name" {
  type        = string
  description = "Host name clients use for churn-api; an ACM certificate is created for it and validated in route53_zone_id. Null: no certificate is created."
  default     = null

  validation {
    condition     = var.domain_name == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,}$", coalesce(var.domain_name, "x")))
    error_message = "domain_name must be a lowercase DNS name such as churn-api.example.com."
  }
}

variable "route53_zone_id" {
  type        = string
  description = "Route 53 hosted zone that holds domain_name, where the certificate's validation record is written."
  default     = null

  validation {
    condition     = var.route53_zone_id == null || can(regex("^Z[A-Z0-9]{1,31}$", coalesce(var.route53_zone_id, "x")))
    error_message = "route53_zone_id must be a hosted zone ID such as Z0123456789ABCDEFGHIJ."
  }
}

variable "certificate_arn" {
  type        = string
  description = "An existing ACM certificate for the listener, instead of creating one (leave domain_name null)."
  default     = null

  validation {
    condition     = var.certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/", coalesce(var.certificate_arn, "x")))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "waf_rate_limit" {
  type        = number
  description = "Requests one client address may send in five minutes before WAF blocks it; null: no web ACL."
  default     = null

  validation {
    condition     = var.waf_rate_limit == null || (coalesce(var.waf_rate_limit, 100) >= 10 && coalesce(var.waf_rate_limit, 100) <= 2000000000)
    error_message = "waf_rate_limit must be null or between 10 and 2,000,000,000 (the WAF limits)."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days to keep WAF logs in CloudWatch Logs."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (for example 30, 90, 365)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes them."
  default     = {}
}
