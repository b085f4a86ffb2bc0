# Plan-only: the mocked provider needs no AWS credentials.
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

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{}"
    }
  }

  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000"
    }
  }
}

mock_provider "random" {}

variables {
  name                       = "churn-dev"
  vpc_id                     = "vpc-0123456789abcdef0"
  subnet_ids                 = ["subnet-a", "subnet-b", "subnet-c"]
  allowed_security_group_ids = ["sg-0123456789abcdef0"]
  engine_version             = "17"
  instance_class             = "db.t4g.micro"
}

run "private_encrypted_backed_up_with_managed_credentials" {
  command = plan

  assert {
    condition     = aws_db_instance.this.publicly_accessible == false && aws_db_instance.this.storage_encrypted
    error_message = "The database must be private and encrypted."
  }

  assert {
    condition     = aws_db_instance.this.backup_retention_period >= 1
    error_message = "The database must keep automated backups."
  }

  assert {
    condition     = aws_secretsmanager_secret.db.name == "churn-dev/mlflow/postgres"
    error_message = "The credentials secret must be churn-<env>/mlflow/postgres, the key the ExternalSecret reads."
  }

  assert {
    condition     = aws_secretsmanager_secret.predictions.name == "churn-dev/predictions/postgres"
    error_message = "The prediction store's secret must be <name>/predictions/postgres."
  }

  assert {
    condition     = aws_db_parameter_group.this.family == "postgres17"
    error_message = "The parameter group family must follow the engine's major version."
  }
}

run "rejects_a_pinned_minor_version" {
  command = plan

  variables {
    engine_version = "17.5"
  }

  expect_failures = [var.engine_version]
}
