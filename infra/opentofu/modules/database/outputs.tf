output "address" {
  description = "Host name of the PostgreSQL instance."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the PostgreSQL instance."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Database MLflow uses as its backend store."
  value       = aws_db_instance.this.db_name
}

output "secret_arn" {
  description = "ARN of the Secrets Manager secret `churn-<env>/mlflow/postgres` (username, password, host, port, dbname), read by External Secrets."
  value       = aws_secretsmanager_secret.db.arn
}

output "secret_name" {
  description = "Name of the Secrets Manager secret holding the credentials."
  value       = aws_secretsmanager_secret.db.name
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the database and its credentials secret."
  value       = aws_kms_key.db.arn
}

output "predictions_secret_name" {
  description = "Name of the Secrets Manager secret with the prediction store's connection (database `predictions` on the same instance)."
  value       = aws_secretsmanager_secret.predictions.name
}

output "predictions_secret_arn" {
  description = "ARN of the prediction store's Secrets Manager secret, read by External Secrets."
  value       = aws_secretsmanager_secret.predictions.arn
}
