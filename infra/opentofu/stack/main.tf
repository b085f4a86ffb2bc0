locals {
  # Every AWS name starts with this; S3 names are global, so a fork sets its own.
  name = var.name_prefix
  # From envs/<env> to the repository root, where platform/ and clusters/ live.
  repo_root = "${path.module}/../../../.."
  # The registry is account-wide and lives in envs/shared; this environment only names it.
  ecr_repository_arns = [
    for r in var.ecr_repositories : "arn:aws:ecr:${var.region}:${var.account_id}:repository/${r}"
  ]
  gitops_repo_url = coalesce(var.gitops_repo_url, "https://github.com/${var.github_repository}.git")
}

provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]

  default_tags {
    tags = {
      "app.kubernetes.io/part-of" = "churn"
      environment                 = var.environment
      managed-by                  = "opentofu"
    }
  }
}

# Both Kubernetes-facing providers log in with a short-lived EKS token, never a stored kubeconfig.
provider "helm" {
  kubernetes = {
    host                   = module.eks.cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
    }
  }
}

provider "kubernetes" {
  host                   = module.eks.cluster_endpoint
  cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
  }
}

################################################################################
# Network
################################################################################

module "network" {
  source = "../../modules/network"

  name                    = local.name
  cidr_block              = var.vpc_cidr
  availability_zones      = var.availability_zones
  single_nat_gateway      = var.single_nat_gateway
  flow_log_retention_days = var.log_retention_days
}

################################################################################
# EKS Cluster
################################################################################

module "eks" {
  source = "../../modules/eks"

  name                 = local.name
  kubernetes_version   = var.kubernetes_version
  vpc_id               = module.network.vpc_id
  private_subnet_ids   = module.network.private_subnet_ids
  public_access_cidrs  = var.public_access_cidrs
  admin_principal_arns = var.admin_principal_arns
  node_instance_types  = var.node_instance_types
  node_capacity_type   = var.node_capacity_type
  node_scaling         = var.node_scaling
  addon_versions       = var.addon_versions
  log_retention_days   = var.log_retention_days
}

# EKS 1.30 and later mark no StorageClass as default, so a claim without storageClassName
# (Prometheus') would stay Pending. The EBS CSI add-on provisions these volumes.
resource "kubernetes_storage_class_v1" "gp3" {
  metadata {
    name = "gp3"
    annotations = {
      "storageclass.kubernetes.io/is-default-class" = "true"
    }
  }

  storage_provisioner    = "ebs.csi.aws.com"
  reclaim_policy         = "Delete"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true
  parameters = {
    type      = "gp3"
    encrypted = "true"
  }

  depends_on = [module.eks]
}

################################################################################
# Storage and database
################################################################################

module "storage" {
  source = "../../modules/storage"

  name_prefix   = local.name
  force_destroy = var.bucket_force_destroy
}

module "database" {
  source = "../../modules/database"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  engine_version             = var.db_engine_version
  instance_class             = var.db_instance_class
  multi_az                   = var.db_multi_az
  backup_retention_days      = var.db_backup_retention_days
  deletion_protection        = var.db_deletion_protection
}

# Entries whose values come from people, not from OpenTofu (GitHub credentials, OIDC clients;
# var.out_of_band_secrets lists them): created empty here, so External Secrets finds them and
# the README names them; encrypted with the database module's key, the one the External
# Secrets role may decrypt.
resource "aws_secretsmanager_secret" "out_of_band" {
  for_each = var.out_of_band_secrets

  name                    = "${local.name}/${each.value}"
  description             = "Set by hand (infra/opentofu/README.md, First boot); read by External Secrets"
  kms_key_id              = module.database.kms_key_arn
  recovery_window_in_days = 7
}

################################################################################
# Identity
################################################################################

module "identity" {
  source = "../../modules/identity"

  name_prefix             = local.name
  cluster_name            = module.eks.cluster_name
  oidc_provider_arn       = module.eks.oidc_provider_arn
  oidc_issuer             = module.eks.oidc_issuer
  bucket_arns             = module.storage.bucket_arns
  bucket_kms_key_arn      = module.storage.kms_key_arn
  ecr_repository_arns     = local.ecr_repository_arns
  database_secret_arn     = module.database.secret_arn
  database_kms_key_arn    = module.database.kms_key_arn
  platform_secrets_prefix = var.platform_secrets_prefix
  github_repository       = var.github_repository
  github_environment      = coalesce(var.github_environment, var.environment)
  github_can_push_images  = var.github_can_push_images
  model_source_bucket_arn = var.model_source_name_prefix == null ? null : "arn:aws:s3:::${var.model_source_name_prefix}-models"
}

################################################################################
# In front of the ALB: certificate and web ACL
################################################################################

module "ingress" {
  source = "../../modules/ingress"

  name               = local.name
  domain_name        = var.ingress_domain_name
  route53_zone_id    = var.ingress_route53_zone_id
  certificate_arn    = var.ingress_certificate_arn
  waf_rate_limit     = var.waf_rate_limit
  log_retention_days = var.log_retention_days
}

################################################################################
# Hand-off to Argo CD
################################################################################

module "gitops_bridge" {
  source = "../../modules/gitops-bridge"

  environment               = var.environment
  cluster_name              = module.eks.cluster_name
  argocd_chart_version      = var.argocd_chart_version
  argocd_apps_chart_version = var.argocd_apps_chart_version
  argocd_values_file        = "${local.repo_root}/platform/argocd/values.yaml"
  root_application_file     = "${local.repo_root}/clusters/${var.environment}/root.yaml"
  project_files             = ["${local.repo_root}/platform/argocd/projects/platform.yaml"]

  # Every fact the platform reads, once: the keys are the table in docs/contracts.md, "The
  # hand-off from OpenTofu to Argo CD" (a test holds them equal).
  cluster_annotations = merge(local.cluster_facts, local.role_annotations, local.bucket_annotations)

  # Argo CD needs nodes to run on, networking, and volumes for what it installs.
  depends_on = [module.eks, kubernetes_storage_class_v1.gp3]
}

locals {
  cluster_facts = {
    aws_account_id             = var.account_id
    aws_region                 = var.region
    aws_cluster_name           = module.eks.cluster_name
    aws_vpc_id                 = module.network.vpc_id
    aws_vpc_cidr               = module.network.vpc_cidr_block
    name_prefix                = local.name
    ingress_certificate_arn    = module.ingress.certificate_arn
    ingress_waf_acl_arn        = module.ingress.web_acl_arn
    gitops_repo_url            = local.gitops_repo_url
    gitops_repo_revision       = var.gitops_repo_revision
    mlflow_db_host             = module.database.address
    mlflow_db_secret_name      = module.database.secret_name
    predictions_db_secret_name = module.database.predictions_secret_name
  }
  # <serviceaccount>_iam_role_arn and <purpose>_bucket, with - turned into _.
  role_annotations   = { for sa, arn in module.identity.workload_role_arns : "${replace(sa, "-", "_")}_iam_role_arn" => arn }
  bucket_annotations = { for purpose, bucket in module.storage.bucket_names : "${replace(purpose, "-", "_")}_bucket" => bucket }
}
