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

  mock_resource "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"
      url = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::111122223333:role/mocked"
    }
  }

  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000"
    }
  }
}

variables {
  name                = "churn-dev"
  kubernetes_version  = "1.33"
  vpc_id              = "vpc-0123456789abcdef0"
  private_subnet_ids  = ["subnet-a", "subnet-b", "subnet-c"]
  node_instance_types = ["m6i.large"]
  node_scaling = {
    min_size     = 2
    desired_size = 2
    max_size     = 4
  }
  addon_versions = {
    "vpc-cni"                = "v1.19.5-eksbuild.1"
    "coredns"                = "v1.12.1-eksbuild.2"
    "kube-proxy"             = "v1.33.0-eksbuild.2"
    "eks-pod-identity-agent" = "v1.3.7-eksbuild.2"
    "aws-ebs-csi-driver"     = "v1.44.0-eksbuild.1"
  }
}

run "private_endpoint_encrypted_secrets_all_logs" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access == false && aws_eks_cluster.this.vpc_config[0].endpoint_private_access == true
    error_message = "The API endpoint must be private when no public CIDRs are listed."
  }

  assert {
    condition     = one(aws_eks_cluster.this.encryption_config).resources == toset(["secrets"])
    error_message = "Kubernetes Secrets must be encrypted with the KMS key."
  }

  assert {
    condition     = aws_kms_key.cluster.enable_key_rotation == true
    error_message = "The cluster KMS key must rotate."
  }

  assert {
    condition     = length(aws_eks_cluster.this.enabled_cluster_log_types) == 5
    error_message = "All five control-plane log types must be enabled."
  }
}

run "nodes_require_imdsv2_with_one_hop" {
  command = plan

  assert {
    condition     = aws_launch_template.node.metadata_options[0].http_tokens == "required" && aws_launch_template.node.metadata_options[0].http_put_response_hop_limit == 1
    error_message = "Nodes must require IMDSv2 with a hop limit of 1."
  }
}

run "public_endpoint_only_for_listed_cidrs" {
  command = plan

  variables {
    public_access_cidrs = ["203.0.113.10/32"]
  }

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access == true && aws_eks_cluster.this.vpc_config[0].public_access_cidrs == toset(["203.0.113.10/32"])
    error_message = "The public endpoint must open only to the listed CIDRs."
  }
}

run "rejects_the_whole_internet" {
  command = plan

  variables {
    public_access_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.public_access_cidrs]
}
