output "argocd_namespace" {
  description = "Namespace Argo CD runs in."
  value       = helm_release.argocd.namespace
}

output "cluster_secret_name" {
  description = "Name of the Argo CD cluster Secret carrying the environment label and the AWS annotations."
  value       = kubernetes_secret_v1.cluster.metadata[0].name
}

output "root_application" {
  description = "Name and synced path of the root Application."
  value       = { name = local.root.metadata.name, path = local.root.spec.source.path }
}

output "cluster_annotations" {
  description = "The annotations written on the cluster Secret."
  value       = kubernetes_secret_v1.cluster.metadata[0].annotations
}
