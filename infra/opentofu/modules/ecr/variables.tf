variable "repositories" {
  type        = set(string)
  description = "Repository names. The registry is shared by every environment: images move between them by digest."
  default     = ["churn-api", "churn-workflows"]

  validation {
    condition     = alltrue([for r in var.repositories : can(regex("^[a-z0-9]+(-[a-z0-9]+)*$", r))])
    error_message = "repositories must be kebab-case names."
  }
}

variable "untagged_image_days" {
  type        = number
  description = "Days an untagged image (a layer no tag points to any more) is kept."
  default     = 14

  validation {
    condition     = var.untagged_image_days >= 1
    error_message = "untagged_image_days must be at least 1."
  }
}

variable "max_tagged_images" {
  type        = number
  description = "Tagged images kept per repository; older ones expire, so roll back within this window."
  default     = 200

  validation {
    condition     = var.max_tagged_images >= 10
    error_message = "max_tagged_images must be at least 10 so rollbacks stay possible."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes them."
  default     = {}
}
