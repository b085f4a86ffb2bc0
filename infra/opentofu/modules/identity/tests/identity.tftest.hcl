# Plan-only: the mocked provider needs no AWS credentials. The policy documents are rendered
# by the real data source logic only when a provider runs, so the assertions read the inputs
# the roles are built from.
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "111122223333"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_region" {
    defaults = {
      region = "eu-west-1"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{}"
    }
  }

  mock_data "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
    }
  }
}

variables {
  name_prefix       = "churn-dev"
  cluster_name      = "churn-dev"
  oidc_provider_arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"
  oidc_issuer       = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"
  bucket_arns = {
    "data"             = "arn:aws:s3:::churn-dev-data"
    "models"           = "arn:aws:s3:::churn-dev-models"
    "mlflow-artifacts" = "arn:aws:s3:::churn-dev-mlflow-artifacts"
    "argo-artifacts"   = "arn:aws:s3:::churn-dev-argo-artifacts"
  }
  bucket_kms_key_arn   = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000001"
  ecr_repository_arns  = ["arn:aws:ecr:eu-west-1:111122223333:repository/churn-api", "arn:aws:ecr:eu-west-1:111122223333:repository/churn-workflows"]
  database_secret_arn  = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!db-example"
  database_kms_key_arn = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000002"
  github_repository    = "example-org/churn-platform"
  github_environment   = "dev"
}

run "one_role_per_service_account_named_by_the_contract" {
  command = plan

  assert {
    condition = toset(values(aws_iam_role.workload)[*].name) == toset([
      "churn-dev-churn-api", "churn-dev-churn-workflows", "churn-dev-mlflow",
      "churn-dev-argo-workflows-server", "churn-dev-aws-load-balancer-controller", "churn-dev-external-secrets",
      "churn-dev-cluster-autoscaler", "churn-dev-argo-rollouts",
    ])
    error_message = "Workload roles must be churn-<env>-<service account>."
  }

  assert {
    condition     = aws_iam_role.github_actions.name == "churn-dev-github-actions"
    error_message = "The CI role must be churn-<env>-github-actions."
  }

  assert {
    condition     = length(aws_iam_role_policy.github_actions) == 0
    error_message = "Only the environment that builds images may push to ECR."
  }
}

run "dev_pushes_images" {
  command = plan

  variables {
    github_can_push_images = true
  }

  assert {
    condition     = length(aws_iam_role_policy.github_actions) == 1
    error_message = "The image-building environment's role must be able to push to ECR."
  }
}

run "rejects_a_wildcard_repository" {
  command = plan

  variables {
    github_repository = "example-org/*"
  }

  expect_failures = [var.github_repository]
}
