# What exists once per AWS account, whatever the environments: the image registry, the
# GitHub OIDC provider every environment's CI role trusts, and the Auto Scaling
# service-linked role the node volumes' key policies name. Applied once, before any
# environment; destroying an environment never touches it.

provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]

  default_tags {
    tags = {
      "app.kubernetes.io/part-of" = "churn"
      environment                 = "shared"
      managed-by                  = "opentofu"
    }
  }
}

# Images are built once and move between environments by digest.
module "ecr" {
  source = "../../modules/ecr"

  repositories = var.ecr_repositories
}

# Each environment's CI role trusts this provider for its own GitHub environment only
# (modules/identity).
resource "aws_iam_openid_connect_provider" "github" {
  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
}

# A KMS key policy may only name a role that exists: the node group's volume key names this one.
# AWS creates it with the first Auto Scaling group of an account; where it exists already, set
# create_autoscaling_service_linked_role = false (or import it).
resource "aws_iam_service_linked_role" "autoscaling" {
  count = var.create_autoscaling_service_linked_role ? 1 : 0

  aws_service_name = "autoscaling.amazonaws.com"
  description      = "EC2 Auto Scaling: launches the EKS managed node groups' instances"
}
