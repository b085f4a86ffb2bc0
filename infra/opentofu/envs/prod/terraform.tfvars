# prod: a NAT gateway per zone, bigger on-demand nodes, a Multi-AZ database, long retention.
environment        = "prod"
name_prefix        = "churn-prod"
account_id         = "111122223333"
region             = "eu-west-1"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr           = "10.30.0.0/16"
single_nat_gateway = false

kubernetes_version = "1.34"
addon_versions = {
  "vpc-cni"                = "v1.20.4-eksbuild.2"
  "coredns"                = "v1.12.3-eksbuild.1"
  "kube-proxy"             = "v1.34.0-eksbuild.2"
  "eks-pod-identity-agent" = "v1.3.10-eksbuild.2"
  "aws-ebs-csi-driver"     = "v1.54.0-eksbuild.1"
}
node_instance_types = ["m6i.xlarge"]
node_capacity_type  = "ON_DEMAND"
node_scaling = {
  min_size     = 3
  desired_size = 3
  max_size     = 9
}
log_retention_days = 365

db_engine_version        = "17"
db_instance_class        = "db.m7g.large"
db_multi_az              = true
db_backup_retention_days = 30
db_deletion_protection   = true

model_source_name_prefix  = "churn-staging"
github_repository         = "example-org/churn-platform"
argocd_chart_version      = "8.5.0"
argocd_apps_chart_version = "2.0.2"

# churn-api's HTTPS listener: a certificate for this name, validated in this hosted zone, and
# a WAF rate limit of 2,000 requests per client address per five minutes (about 7 a second).
ingress_domain_name     = "churn-api.example.com"
ingress_route53_zone_id = "Z0123456789EXAMPLE0001"
waf_rate_limit          = 2000
