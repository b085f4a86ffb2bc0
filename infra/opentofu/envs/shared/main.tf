# What exists once per AWS account, whatever the environments: the image registry, the
# GitHub OIDC provider every environment's CI role trusts, the Auto Scaling service-linked
# role the node volumes' key policies name, and the secrets every cluster reads alike. Applied once, before any
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

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# Secrets every cluster reads under the same name (the Alertmanager receivers); their
# values are set by hand (infra/opentofu/README.md, "First boot").
resource "aws_kms_key" "platform_secrets" {
  description             = "churn platform-wide secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        # In a key policy "*" means this key.
        Resource = "*"
      },
    ]
  })
}

resource "aws_secretsmanager_secret" "platform" {
  for_each = var.platform_secrets

  name                    = each.value
  description             = "Set by hand; read by External Secrets in every cluster"
  kms_key_id              = aws_kms_key.platform_secrets.arn
  recovery_window_in_days = 7
}
