output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the EKS cluster."
  value       = aws_eks_cluster.this.arn
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64-encoded CA certificate of the API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_security_group_id" {
  description = "Security group EKS created for the control plane and nodes."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider, trusted by the IRSA roles."
  value       = aws_iam_openid_connect_provider.cluster.arn
}

output "oidc_issuer" {
  description = "Issuer of the cluster's service-account tokens, without https://."
  value       = replace(aws_iam_openid_connect_provider.cluster.url, "https://", "")
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts Kubernetes Secrets and control-plane logs."
  value       = aws_kms_key.cluster.arn
}

output "node_volumes_kms_key_arn" {
  description = "ARN of the KMS key that encrypts the nodes' root volumes (usable by the Auto Scaling service-linked role)."
  value       = aws_kms_key.node_volumes.arn
}
