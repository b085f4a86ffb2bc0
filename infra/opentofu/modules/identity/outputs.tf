output "workload_role_arns" {
  description = "IRSA role ARN by service account name (churn-api, churn-workflows, mlflow, argo-workflows-server, aws-load-balancer-controller, external-secrets, cluster-autoscaler, argo-rollouts)."
  value       = { for k, r in aws_iam_role.workload : k => r.arn }
}

output "workload_service_accounts" {
  description = "The `namespace/name` of the service account each role trusts, by service account name."
  value       = { for k, w in local.workloads : k => "${w.namespace}/${k}" }
}

output "github_actions_role_arn" {
  description = "ARN of the role GitHub Actions jobs in this environment's GitHub environment assume."
  value       = aws_iam_role.github_actions.arn
}
