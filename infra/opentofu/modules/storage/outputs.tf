output "bucket_names" {
  description = "Bucket name by purpose: data, models, mlflow-artifacts, argo-artifacts."
  value       = { for k, b in aws_s3_bucket.this : k => b.bucket }
}

output "bucket_arns" {
  description = "Bucket ARN by purpose: data, models, mlflow-artifacts, argo-artifacts."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the buckets; readers need kms:Decrypt on it."
  value       = aws_kms_key.buckets.arn
}
