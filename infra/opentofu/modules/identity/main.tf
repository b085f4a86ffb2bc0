data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  prefix    = var.name_prefix
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.region
  github    = "token.actions.githubusercontent.com"

  # One role per workload, named after its service account (the manifests annotate these names).
  workloads = {
    "churn-api"                    = { namespace = "churn", policy = data.aws_iam_policy_document.churn_api.json }
    "churn-workflows"              = { namespace = "churn-training", policy = data.aws_iam_policy_document.churn_workflows.json }
    "mlflow"                       = { namespace = "mlflow", policy = data.aws_iam_policy_document.mlflow.json }
    "argo-workflows-server"        = { namespace = "argo", policy = data.aws_iam_policy_document.argo_workflows_server.json }
    "aws-load-balancer-controller" = { namespace = "kube-system", policy = data.aws_iam_policy_document.aws_load_balancer_controller.json }
    "external-secrets"             = { namespace = "external-secrets", policy = data.aws_iam_policy_document.external_secrets.json }
    "cluster-autoscaler"           = { namespace = "kube-system", policy = data.aws_iam_policy_document.cluster_autoscaler.json }
    "argo-rollouts"                = { namespace = "argo-rollouts", policy = data.aws_iam_policy_document.argo_rollouts.json }
  }
}

################################################################################
# Workload roles (IRSA)
################################################################################

data "aws_iam_policy_document" "workload_assume" {
  for_each = local.workloads

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${each.value.namespace}:${each.key}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "workload" {
  for_each = local.workloads

  name                 = "${local.prefix}-${each.key}"
  description          = "IRSA role of ${each.value.namespace}/${each.key} in ${local.prefix}"
  assume_role_policy   = data.aws_iam_policy_document.workload_assume[each.key].json
  max_session_duration = 3600

  tags = var.tags
}

resource "aws_iam_role_policy" "workload" {
  for_each = local.workloads

  name   = each.key
  role   = aws_iam_role.workload[each.key].id
  policy = each.value.policy
}

# churn-api reads the serving artifacts, nothing else.
data "aws_iam_policy_document" "churn_api" {
  statement {
    sid       = "ReadModels"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.bucket_arns["models"]}/${var.models_prefix}*"]
  }

  statement {
    sid       = "DecryptModels"
    actions   = ["kms:Decrypt"]
    resources = [var.bucket_kms_key_arn]
  }
}

# Training reads data, writes models and its artifacts.
data "aws_iam_policy_document" "churn_workflows" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [for p in ["data", "models", "mlflow-artifacts", "argo-artifacts"] : var.bucket_arns[p]]
  }

  statement {
    sid       = "ReadData"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.bucket_arns["data"]}/*"]
  }

  statement {
    sid       = "WriteModelsAndArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = [for p in ["models", "mlflow-artifacts", "argo-artifacts"] : "${var.bucket_arns[p]}/*"]
  }

  statement {
    sid       = "UseBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.bucket_kms_key_arn]
  }
}

# The MLflow server proxies artifact reads and writes to its bucket.
data "aws_iam_policy_document" "mlflow" {
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.bucket_arns["mlflow-artifacts"]]
  }

  statement {
    sid       = "ReadWriteArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${var.bucket_arns["mlflow-artifacts"]}/*"]
  }

  statement {
    sid       = "UseBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.bucket_kms_key_arn]
  }
}

# The Argo Workflows UI shows step artifacts and logs; it never writes them.
data "aws_iam_policy_document" "argo_workflows_server" {
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.bucket_arns["argo-artifacts"]]
  }

  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arns["argo-artifacts"]}/*"]
  }

  statement {
    sid       = "DecryptArtifacts"
    actions   = ["kms:Decrypt"]
    resources = [var.bucket_kms_key_arn]
  }
}

# External Secrets reads this environment's secrets only.
data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid = "ReadSecrets"
    actions = [
      "secretsmanager:GetResourcePolicy",
      "secretsmanager:GetSecretValue",
      "secretsmanager:DescribeSecret",
      "secretsmanager:ListSecretVersionIds",
    ]
    resources = [
      "arn:${local.partition}:secretsmanager:${local.region}:${local.account}:secret:${local.prefix}/*",
      var.database_secret_arn,
    ]
  }

  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.database_kms_key_arn]
  }

  # The secrets every cluster reads alike (envs/shared), under their own key.
  statement {
    sid = "ReadPlatformSecrets"
    actions = [
      "secretsmanager:GetResourcePolicy",
      "secretsmanager:GetSecretValue",
      "secretsmanager:DescribeSecret",
      "secretsmanager:ListSecretVersionIds",
    ]
    resources = ["arn:${local.partition}:secretsmanager:${local.region}:${local.account}:secret:${var.platform_secrets_prefix}/*"]
  }

  statement {
    sid       = "DecryptPlatformSecrets"
    actions   = ["kms:Decrypt"]
    resources = ["arn:${local.partition}:kms:${local.region}:${local.account}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:SecretARN"
      values   = ["arn:${local.partition}:secretsmanager:${local.region}:${local.account}:secret:${var.platform_secrets_prefix}/*"]
    }
  }
}

# Cluster Autoscaler: it reads every group and template, and changes only the Auto Scaling
# groups EKS tagged as this cluster's (k8s.io/cluster-autoscaler/<cluster>=owned).
data "aws_iam_policy_document" "cluster_autoscaler" {
  statement {
    sid = "Discover"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
      "eks:DescribeNodegroup",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "ScaleThisClustersGroups"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}"
      values   = ["owned"]
    }
  }
}

# Argo Rollouts with --aws-verify-target-group: before it scales the old pods down, the
# controller checks through the ELB API that the ALB's rules, weights and target groups reflect
# the Ingress it wrote. Read-only; ELB's Describe calls take no resource ARN, hence "*". The
# actions are those the Rollouts ALB guide lists.
data "aws_iam_policy_document" "argo_rollouts" {
  statement {
    sid = "VerifyTargetGroups"
    actions = [
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetHealth",
    ]
    resources = ["*"]
  }
}

################################################################################
# GitHub Actions role (OIDC): dev's pushes images; staging's and prod's copy promoted models
################################################################################

# The provider is account-wide: envs/shared creates it, every environment's role trusts it.
data "aws_iam_openid_connect_provider" "github" {
  url = "https://${local.github}"
}

locals {
  github_provider_arn = data.aws_iam_openid_connect_provider.github.arn
}

data "aws_iam_policy_document" "github_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Only jobs of this repository that run in this environment's GitHub environment (whose
    # protection rules pick the branches and reviewers): no forks, no pull requests, and no
    # workflow on main can borrow another environment's role.
    condition {
      test     = "StringEquals"
      variable = "${local.github}:sub"
      values   = ["repo:${var.github_repository}:environment:${var.github_environment}"]
    }
  }
}

data "aws_iam_policy_document" "github_push" {
  count = var.github_can_push_images ? 1 : 0

  statement {
    sid       = "Login"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushImages"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = var.ecr_repository_arns
  }
}

# The promote workflow copies a model artifact one environment on, by its content address only.
data "aws_iam_policy_document" "github_copy_models" {
  count = var.model_source_bucket_arn == null ? 0 : 1

  statement {
    sid       = "ReadPromotedModels"
    actions   = ["s3:GetObject"]
    resources = ["${var.model_source_bucket_arn}/${var.models_prefix}sha256/*"]
  }

  statement {
    sid       = "WritePromotedModels"
    actions   = ["s3:PutObject"]
    resources = ["${var.bucket_arns["models"]}/${var.models_prefix}sha256/*"]
  }

  statement {
    sid       = "UseTheModelBucketKeys"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["arn:${local.partition}:kms:${local.region}:${local.account}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = ["${var.model_source_bucket_arn}*", "${var.bucket_arns["models"]}*"]
    }
  }
}

resource "aws_iam_role" "github_actions" {
  name                 = "${local.prefix}-github-actions"
  description          = "GitHub Actions in ${var.github_repository}, environment ${var.github_environment}"
  assume_role_policy   = data.aws_iam_policy_document.github_assume.json
  max_session_duration = 3600

  tags = var.tags
}

# Images are built once, in dev's environment, and move on by digest.
resource "aws_iam_role_policy" "github_actions" {
  count = var.github_can_push_images ? 1 : 0

  name   = "ecr-push"
  role   = aws_iam_role.github_actions.id
  policy = data.aws_iam_policy_document.github_push[0].json
}

resource "aws_iam_role_policy" "github_actions_models" {
  count = var.model_source_bucket_arn == null ? 0 : 1

  name   = "copy-promoted-models"
  role   = aws_iam_role.github_actions.id
  policy = data.aws_iam_policy_document.github_copy_models[0].json
}
