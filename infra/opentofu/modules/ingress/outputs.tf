output "certificate_arn" {
  description = "ARN of the listener's certificate (the validated one created here, or certificate_arn); \"\" when there is none."
  value       = local.create_cert ? aws_acm_certificate_validation.this[0].certificate_arn : (var.certificate_arn == null ? "" : var.certificate_arn)

  precondition {
    condition     = !(local.create_cert && var.certificate_arn != null)
    error_message = "Set domain_name (a certificate is created) or certificate_arn (one exists), not both."
  }

  precondition {
    condition     = !local.create_cert || var.route53_zone_id != null
    error_message = "domain_name needs route53_zone_id: the certificate is validated by a DNS record there."
  }
}

output "web_acl_arn" {
  description = "ARN of the web ACL the ALB attaches (alb.ingress.kubernetes.io/wafv2-acl-arn); \"\" when there is none."
  value       = local.create_waf ? aws_wafv2_web_acl.this[0].arn : ""
}
