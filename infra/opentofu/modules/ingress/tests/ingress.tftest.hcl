# Plan-only: the mocked provider needs no AWS credentials.
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "111122223333"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_region" {
    defaults = {
      region = "eu-west-1"
    }
  }
}

variables {
  name = "churn-prod"
}

run "nothing_by_default" {
  command = plan

  assert {
    condition     = length(aws_acm_certificate.this) == 0 && length(aws_wafv2_web_acl.this) == 0
    error_message = "Without a domain and a rate limit the module creates nothing."
  }

  assert {
    condition     = output.certificate_arn == "" && output.web_acl_arn == ""
    error_message = "Absent facts are handed on as empty strings."
  }
}

run "certificate_validated_by_dns_and_a_rate_limit" {
  command = plan

  variables {
    domain_name     = "churn-api.example.com"
    route53_zone_id = "Z0123456789ABCDEFGHIJ"
    waf_rate_limit  = 2000
  }

  assert {
    condition     = aws_acm_certificate.this[0].validation_method == "DNS"
    error_message = "The certificate must be validated through DNS."
  }

  assert {
    condition     = one([for r in aws_wafv2_web_acl.this[0].rule : r.statement[0].rate_based_statement[0].limit if r.name == "rate-limit-per-client"]) == 2000
    error_message = "The web ACL must block a client over waf_rate_limit requests."
  }

  assert {
    condition     = startswith(aws_cloudwatch_log_group.waf[0].name, "aws-waf-logs-")
    error_message = "WAF delivers logs only to groups named aws-waf-logs-*."
  }
}

run "an_existing_certificate_is_handed_on" {
  command = plan

  variables {
    certificate_arn = "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = output.certificate_arn == var.certificate_arn && length(aws_acm_certificate.this) == 0
    error_message = "An existing certificate is passed through, none created."
  }
}

run "rejects_a_rate_limit_below_what_waf_takes" {
  command = plan

  variables {
    waf_rate_limit = 5
  }

  expect_failures = [var.waf_rate_limit]
}
