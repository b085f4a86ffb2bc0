locals {
  name = "churn-${var.environment}"
  # From envs/<env> to the repository root, where platform/ and clusters/ live.
  repo_root = "${path.module}/../../../.."
  ecr_repository_arns = var.manage_shared_resources ? values(module.ecr[0].repository_arns) : [
    for r in var.ecr_repositories : "arn:aws:ecr:${var.region}:${var.account_id}:repository/${r}"
  ]
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

################################################################################
# Storage, registry and database
################################################################################

module "storage" {
  source = "../../modules/storage"

  environment   = var.environment
  force_destroy = var.bucket_force_destroy
}

# The registry is account-wide: one environment owns it, every environment pulls from it.
module "ecr" {
  source = "../../modules/ecr"
  count  = var.manage_shared_resources ? 1 : 0

  repositories = var.ecr_repositories
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

################################################################################
# Identity
################################################################################

module "identity" {
  source = "../../modules/identity"

  environment                 = var.environment
  oidc_provider_arn           = module.eks.oidc_provider_arn
  oidc_issuer                 = module.eks.oidc_issuer
  bucket_arns                 = module.storage.bucket_arns
  bucket_kms_key_arn          = module.storage.kms_key_arn
  ecr_repository_arns         = local.ecr_repository_arns
  database_secret_arn         = module.database.secret_arn
  database_kms_key_arn        = module.database.kms_key_arn
  github_repository           = var.github_repository
  github_branch               = var.github_branch
  model_source_bucket_arn     = var.model_source_environment == null ? null : "arn:aws:s3:::churn-${var.model_source_environment}-models"
  create_github_oidc_provider = var.manage_shared_resources
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

  # Facts the ApplicationSets can template into Helm values.
  cluster_annotations = merge(
    {
      aws_account_id        = var.account_id
      aws_region            = var.region
      aws_cluster_name      = module.eks.cluster_name
      aws_vpc_id            = module.network.vpc_id
      mlflow_db_host        = module.database.address
      mlflow_db_secret_name = module.database.secret_name
    },
    { for sa, arn in module.identity.workload_role_arns : "${replace(sa, "-", "_")}_iam_role_arn" => arn },
    { for purpose, bucket in module.storage.bucket_names : "${replace(purpose, "-", "_")}_bucket" => bucket },
  )

  # Argo CD needs nodes to run on and the add-ons to have networking.
  depends_on = [module.eks]
}
