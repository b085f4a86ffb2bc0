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
  description = "Role that jobs in this environment's GitHub environment assume."
  value       = module.identity.github_actions_role_arn
}

output "cluster_annotations" {
  description = "The facts handed to Argo CD on the cluster Secret, by annotation key (docs/contracts.md)."
  value       = module.gitops_bridge.cluster_annotations
}

output "mlflow_database" {
  description = "Host of the database instance and the Secrets Manager secrets of MLflow and the prediction store."
  value       = { host = module.database.address, secret = module.database.secret_name, predictions_secret = module.database.predictions_secret_name }
}
