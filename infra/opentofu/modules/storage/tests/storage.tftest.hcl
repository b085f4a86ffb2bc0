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
}

variables {
  name_prefix = "churn-dev"
}

run "four_buckets_named_by_the_contract" {
  command = plan

  assert {
    condition = toset(values(aws_s3_bucket.this)[*].bucket) == toset([
      "churn-dev-data", "churn-dev-models", "churn-dev-mlflow-artifacts", "churn-dev-argo-artifacts",
    ])
    error_message = "Bucket names must be <name_prefix>-{data,models,mlflow-artifacts,argo-artifacts}."
  }

  assert {
    condition     = alltrue([for b in aws_s3_bucket_public_access_block.this : b.block_public_acls && b.block_public_policy && b.ignore_public_acls && b.restrict_public_buckets])
    error_message = "Every bucket must block public access."
  }

  assert {
    condition     = alltrue([for c in aws_s3_bucket_ownership_controls.this : c.rule[0].object_ownership == "BucketOwnerEnforced"])
    error_message = "Every bucket must enforce bucket-owner object ownership (ACLs off)."
  }

  assert {
    condition     = alltrue([for v in aws_s3_bucket_versioning.this : v.versioning_configuration[0].status == "Enabled"])
    error_message = "Every bucket must be versioned."
  }

  assert {
    condition     = aws_kms_key.buckets.enable_key_rotation
    error_message = "The bucket key must rotate."
  }
}

run "a_fork_picks_its_own_global_names" {
  command = plan

  variables {
    name_prefix = "acme-churn-dev"
  }

  assert {
    condition     = aws_s3_bucket.this["models"].bucket == "acme-churn-dev-models"
    error_message = "Bucket names must follow name_prefix, not a fixed churn-<env>."
  }
}

run "rejects_a_prefix_s3_cannot_take" {
  command = plan

  variables {
    name_prefix = "Churn_Dev"
  }

  expect_failures = [var.name_prefix]
}
