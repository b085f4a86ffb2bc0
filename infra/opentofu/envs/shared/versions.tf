terraform {
  # The same OpenTofu and AWS provider as the environments' roots (stack/versions.tf).
  required_version = "1.11.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "6.42.0"
    }
  }
}
