# staging: prod's shape at a smaller size (on-demand nodes, single-zone database).
environment        = "staging"
name_prefix        = "churn-staging"
account_id         = "111122223333"
region             = "eu-west-1"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr           = "10.20.0.0/16"
single_nat_gateway = true

kubernetes_version = "1.34"
addon_versions = {
  "vpc-cni"                = "v1.20.4-eksbuild.2"
  "coredns"                = "v1.12.3-eksbuild.1"
  "kube-proxy"             = "v1.34.0-eksbuild.2"
  "eks-pod-identity-agent" = "v1.3.10-eksbuild.2"
  "aws-ebs-csi-driver"     = "v1.54.0-eksbuild.1"
}
node_instance_types = ["m6i.large"]
node_capacity_type  = "ON_DEMAND"
node_scaling = {
  min_size     = 3
  desired_size = 3
  max_size     = 6
}
log_retention_days = 90

db_engine_version        = "17"
db_instance_class        = "db.t4g.small"
db_multi_az              = false
db_backup_retention_days = 7
db_deletion_protection   = true

model_source_name_prefix  = "churn-dev"
github_repository         = "example-org/churn-platform"
argocd_chart_version      = "8.5.0"
argocd_apps_chart_version = "2.0.2"
