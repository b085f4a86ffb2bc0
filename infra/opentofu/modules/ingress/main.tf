data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account       = data.aws_caller_identity.current.account_id
  partition     = data.aws_partition.current.partition
  region        = data.aws_region.current.region
  create_cert   = var.domain_name != null
  create_waf    = var.waf_rate_limit != null
  waf_log_group = "aws-waf-logs-${var.name}"
}

################################################################################
# Certificate for the churn-api listener
################################################################################

# A certificate for domain_name, validated through DNS in the given hosted zone; or none,
# when certificate_arn names one that exists already.
resource "aws_acm_certificate" "this" {
  count = local.create_cert ? 1 : 0

  domain_name       = var.domain_name
  validation_method = "DNS"

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "validation" {
  for_each = { for o in flatten(aws_acm_certificate.this[*].domain_validation_options) : o.domain_name => o }

  zone_id         = var.route53_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  count = local.create_cert ? 1 : 0

  certificate_arn         = aws_acm_certificate.this[0].arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

################################################################################
# Web ACL: a rate limit per client address in front of the ALB
################################################################################

resource "aws_kms_key" "waf_logs" {
  count = local.create_waf ? 1 : 0

  description             = "${var.name} WAF logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account}:root" }
        Action    = "kms:*"
        # In a key policy "*" means this key.
        Resource = "*"
      },
      {
        Sid       = "CloudWatchLogsEncrypts"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:${local.waf_log_group}" }
        }
      },
    ]
  })

  tags = var.tags
}

# WAF only delivers to log groups whose name starts with aws-waf-logs-.
resource "aws_cloudwatch_log_group" "waf" {
  count = local.create_waf ? 1 : 0

  name              = local.waf_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.waf_logs[0].arn

  tags = var.tags
}

resource "aws_wafv2_web_acl" "this" {
  count = local.create_waf ? 1 : 0

  name        = "${var.name}-churn-api"
  description = "Rate limit per client address and known bad inputs, in front of the churn-api ALB"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  # One client cannot take the service for everyone: over the limit within five minutes, its
  # requests are refused at the edge until its rate falls again.
  rule {
    name     = "rate-limit-per-client"
    priority = 0

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit                 = var.waf_rate_limit
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-limit-per-client"
      sampled_requests_enabled   = true
    }
  }

  # Request patterns known to exploit common software (Log4Shell among them).
  rule {
    name     = "known-bad-inputs"
    priority = 1

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-churn-api"
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  count = local.create_waf ? 1 : 0

  resource_arn            = aws_wafv2_web_acl.this[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]
}
