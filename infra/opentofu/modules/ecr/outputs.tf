output "repository_urls" {
  description = "Repository URL by name, `<account>.dkr.ecr.<region>.amazonaws.com/<name>`."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "repository_arns" {
  description = "Repository ARN by name."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}
