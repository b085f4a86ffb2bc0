output "cluster_name" {
  description = "Name of the EKS cluster; `aws eks update-kubeconfig --name <this>` to reach it."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server (private unless public_access_cidrs is set)."
  value       = module.eks.cluster_endpoint
}

output "bucket_names" {
  description = "Bucket name by purpose."
  value       = module.storage.bucket_names
}

output "workload_role_arns" {
  description = "IRSA role ARN by service account; the eks.amazonaws.com/role-arn annotations in platform/ must equal these."
  value       = module.identity.workload_role_arns
}

output "github_actions_role_arn" {
  description = "Role the release workflow assumes to push images (set it as the AWS_ROLE_ARN repository variable)."
  value       = module.identity.github_actions_role_arn
}

output "ecr_repository_urls" {
  description = "ECR repository URL by name (only from the environment that manages shared resources)."
  value       = var.manage_shared_resources ? module.ecr[0].repository_urls : tomap({})
}

output "mlflow_database" {
  description = "Host of the MLflow database and the Secrets Manager secret that holds its credentials."
  value       = { host = module.database.address, secret = module.database.secret_name }
}
