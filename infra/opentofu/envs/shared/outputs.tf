output "ecr_repository_urls" {
  description = "ECR repository URL by name."
  value       = module.ecr.repository_urls
}

output "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub Actions OIDC provider."
  value       = aws_iam_openid_connect_provider.github.arn
}

output "platform_secret_names" {
  description = "The platform-wide Secrets Manager entries whose values are set by hand."
  value       = sorted(var.platform_secrets)
}
