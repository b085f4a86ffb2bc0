# Plan-only: the mocked provider needs no AWS credentials.
mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      region = "eu-west-1"
    }
  }

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
  name               = "churn-dev"
  cidr_block         = "10.10.0.0/16"
  availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

run "three_zones_with_a_nat_gateway_each" {
  command = plan

  assert {
    condition     = length(aws_subnet.private) == 3 && length(aws_subnet.public) == 3
    error_message = "Expected three private and three public subnets."
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 3
    error_message = "Expected one NAT gateway per zone by default."
  }

  assert {
    condition     = length(aws_vpc_endpoint.interface) == 3 && aws_vpc_endpoint.s3.vpc_endpoint_type == "Gateway"
    error_message = "Expected the S3 gateway endpoint and the ECR API, ECR DKR and STS interface endpoints."
  }
}

run "single_nat_gateway_for_cheap_environments" {
  command = plan

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1
    error_message = "single_nat_gateway must create one NAT gateway."
  }
}

run "rejects_two_zones" {
  command = plan

  variables {
    availability_zones = ["eu-west-1a", "eu-west-1b"]
  }

  expect_failures = [var.availability_zones]
}
