# dev: smallest sizes, spot nodes, one NAT gateway; its CI role builds and pushes the images.
# Apply envs/shared (ECR, GitHub OIDC provider) once per account first.
environment        = "dev"
name_prefix        = "churn-dev"
account_id         = "111122223333"
region             = "eu-west-1"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr           = "10.10.0.0/16"
single_nat_gateway = true

kubernetes_version = "1.34"
addon_versions = {
  "vpc-cni"                = "v1.20.4-eksbuild.2"
  "coredns"                = "v1.12.3-eksbuild.1"
  "kube-proxy"             = "v1.34.0-eksbuild.2"
  "eks-pod-identity-agent" = "v1.3.10-eksbuild.2"
  "aws-ebs-csi-driver"     = "v1.54.0-eksbuild.1"
}
node_instance_types = ["m6i.large", "m5.large", "m6a.large"]
node_capacity_type  = "SPOT"
node_scaling = {
  min_size     = 2
  desired_size = 2
  max_size     = 4
}
log_retention_days = 30

db_engine_version        = "17"
db_instance_class        = "db.t4g.micro"
db_multi_az              = false
db_backup_retention_days = 7
db_deletion_protection   = false
bucket_force_destroy     = true

github_can_push_images    = true
github_repository         = "example-org/churn-platform"
argocd_chart_version      = "8.5.0"
argocd_apps_chart_version = "2.0.2"
