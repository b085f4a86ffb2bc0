locals {
  namespace = "argocd"
  root      = yamldecode(file(var.root_application_file))
  projects  = [for f in var.project_files : yamldecode(file(f))]
  # Argo CD finds clusters by this label; ApplicationSet cluster generators select on `environment`.
  cluster_labels = merge(var.cluster_labels, {
    "argocd.argoproj.io/secret-type" = "cluster"
    "environment"                    = var.environment
  })
}

################################################################################
# Argo CD, installed once
################################################################################

resource "helm_release" "argocd" {
  name             = "argocd"
  namespace        = local.namespace
  create_namespace = true
  repository       = "https://argoproj.github.io/argo-helm"
  chart            = "argo-cd"
  version          = var.argocd_chart_version
  values           = [file(var.argocd_values_file)]
  wait             = true
  timeout          = 900

  # From here on Argo CD manages itself from platform/argocd; tofu must not fight it.
  lifecycle {
    ignore_changes = all
  }
}

################################################################################
# Cluster Secret: the environment label and the AWS facts as annotations
################################################################################

resource "kubernetes_secret_v1" "cluster" {
  metadata {
    name        = "in-cluster"
    namespace   = local.namespace
    labels      = local.cluster_labels
    annotations = var.cluster_annotations
  }

  data = {
    name   = var.cluster_name
    server = "https://kubernetes.default.svc"
    config = jsonencode({ tlsClientConfig = { insecure = false } })
  }

  depends_on = [helm_release.argocd]
}

################################################################################
# Root Application: clusters/<environment>
################################################################################

# The argocd-apps chart renders Applications and AppProjects from values, so the files in
# Git become its values unchanged: no CRD has to exist when tofu plans.
resource "helm_release" "root" {
  name       = "argocd-root"
  namespace  = local.namespace
  repository = "https://argoproj.github.io/argo-helm"
  chart      = "argocd-apps"
  version    = var.argocd_apps_chart_version
  values = [yamlencode({
    projects = { for p in local.projects : p.metadata.name => merge(p.spec, {
      namespace             = p.metadata.namespace
      finalizers            = try(p.metadata.finalizers, [])
      additionalAnnotations = try(p.metadata.annotations, {})
    }) }
    applications = {
      (local.root.metadata.name) = merge(local.root.spec, {
        # The fork and revision this cluster follows, whatever the file in Git names.
        source = merge(local.root.spec.source, {
          repoURL        = var.cluster_annotations["gitops_repo_url"]
          targetRevision = var.cluster_annotations["gitops_repo_revision"]
        })
        namespace             = local.root.metadata.namespace
        finalizers            = try(local.root.metadata.finalizers, [])
        additionalAnnotations = try(local.root.metadata.annotations, {})
      })
    }
  })]

  depends_on = [kubernetes_secret_v1.cluster]

  # The root Application and the projects are Git's from now on as well.
  lifecycle {
    ignore_changes = all

    precondition {
      condition     = local.root.kind == "Application" && local.root.spec.source.path == "clusters/${var.environment}"
      error_message = "root_application_file must be an Application whose source.path is clusters/${var.environment}."
    }

    precondition {
      condition     = alltrue([for p in local.projects : p.kind == "AppProject"]) && contains([for p in local.projects : p.metadata.name], local.root.spec.project)
      error_message = "project_files must be AppProjects and include the root Application's project."
    }
  }
}
