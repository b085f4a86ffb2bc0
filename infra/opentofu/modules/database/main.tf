data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  identifier = "${var.name}-mlflow"
  family     = "postgres${var.engine_version}"
}

################################################################################
# KMS key for storage, backups, Performance Insights and the credentials
################################################################################

resource "aws_kms_key" "db" {
  description             = "${local.identifier} PostgreSQL"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        # In a key policy "*" means this key.
        Resource = "*"
      },
    ]
  })

  tags = var.tags
}

resource "aws_kms_alias" "db" {
  name          = "alias/${local.identifier}"
  target_key_id = aws_kms_key.db.key_id
}

################################################################################
# Credentials: generated during apply, written to RDS and Secrets Manager only
################################################################################

ephemeral "random_password" "db" {
  length = 40
  # Letters and digits only: the password goes into a postgresql:// URL unescaped.
  special = false
}

resource "aws_secretsmanager_secret" "db" {
  # The ExternalSecret mlflow/mlflow-postgres reads this name.
  name                    = "${var.name}/mlflow/postgres"
  description             = "MLflow backend store credentials for ${local.identifier}"
  kms_key_id              = aws_kms_key.db.arn
  recovery_window_in_days = 7

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "db" {
  secret_id = aws_secretsmanager_secret.db.id
  secret_string_wo = jsonencode({
    username = aws_db_instance.this.username
    password = ephemeral.random_password.db.result
    host     = aws_db_instance.this.address
    port     = aws_db_instance.this.port
    dbname   = aws_db_instance.this.db_name
  })
  secret_string_wo_version = var.password_version
}

# The prediction store keeps its own database, `predictions`, on the same instance; its entry
# carries the same login (the instance has one), so ESO can hand churn-api a complete URL.
resource "aws_secretsmanager_secret" "predictions" {
  # The ExternalSecret of churn-api reads this name (cluster annotation predictions_db_secret_name).
  name                    = "${var.name}/predictions/postgres"
  description             = "Prediction store credentials on ${local.identifier}"
  kms_key_id              = aws_kms_key.db.arn
  recovery_window_in_days = 7

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "predictions" {
  secret_id = aws_secretsmanager_secret.predictions.id
  secret_string_wo = jsonencode({
    username = aws_db_instance.this.username
    password = ephemeral.random_password.db.result
    host     = aws_db_instance.this.address
    port     = aws_db_instance.this.port
    dbname   = "predictions"
  })
  secret_string_wo_version = var.password_version
}

################################################################################
# Network
################################################################################

resource "aws_db_subnet_group" "this" {
  name       = local.identifier
  subnet_ids = var.subnet_ids

  tags = var.tags
}

resource "aws_security_group" "db" {
  name        = local.identifier
  description = "PostgreSQL for MLflow, reachable from the cluster only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = local.identifier })
}

# count, not for_each: the cluster's security group ID is only known after apply.
resource "aws_vpc_security_group_ingress_rule" "postgres" {
  count = length(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the cluster"
  referenced_security_group_id = var.allowed_security_group_ids[count.index]
  from_port                    = 5432
  to_port                      = 5432
  ip_protocol                  = "tcp"
}

################################################################################
# PostgreSQL
################################################################################

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

# Enhanced Monitoring: OS-level metrics (memory, swap, disk queue) that CloudWatch lacks.
resource "aws_iam_role" "monitoring" {
  name               = "${local.identifier}-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_parameter_group" "this" {
  name   = local.identifier
  family = local.family

  # TLS only, and enough logging to audit who connected.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  tags = var.tags
}

resource "aws_db_instance" "this" {
  identifier     = local.identifier
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class
  db_name        = "mlflow"
  username       = "mlflow"

  # Write-only: the password goes to RDS but never into the plan or the state.
  password_wo         = ephemeral.random_password.db.result
  password_wo_version = var.password_version

  allocated_storage     = var.allocated_storage_gib
  max_allocated_storage = var.allocated_storage_gib * 4
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.db.arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  publicly_accessible    = false
  multi_az               = var.multi_az

  backup_retention_period   = var.backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.identifier}-final"

  # engine_version is the major only: AWS applies minor upgrades in the maintenance window and
  # the provider reads them back as engine_version_actual, so no plan ever tries to downgrade.
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]

  monitoring_interval = 60
  monitoring_role_arn = aws_iam_role.monitoring.arn

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.db.arn
  performance_insights_retention_period = 7

  tags = var.tags
}
