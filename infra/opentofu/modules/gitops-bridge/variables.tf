variable "environment" {
  type        = string
  description = "Environment: dev, staging or prod. Becomes the cluster Secret's `environment` label and the root Application's path clusters/<environment>."

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "cluster_name" {
  type        = string
  description = "Name of the EKS cluster (the environment's name_prefix); Argo CD shows it as the cluster's name."

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must be an EKS cluster name."
  }
}

variable "argocd_chart_version" {
  type        = string
  description = "Version of the argo-cd Helm chart installed once; must equal the version platform/argocd/argocd.yaml pins, so Argo CD's first self-sync changes nothing."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.argocd_chart_version))
    error_message = "argocd_chart_version must be an exact version such as 8.5.0."
  }
}

variable "argocd_values_file" {
  type        = string
  description = "Path of the argo-cd chart values, platform/argocd/values.yaml, the same file Argo CD later syncs itself with."

  validation {
    condition     = endswith(var.argocd_values_file, ".yaml")
    error_message = "argocd_values_file must be a .yaml file."
  }
}

variable "argocd_apps_chart_version" {
  type        = string
  description = "Version of the argocd-apps Helm chart that creates the root Application."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.argocd_apps_chart_version))
    error_message = "argocd_apps_chart_version must be an exact version such as 2.0.2."
  }
}

variable "root_application_file" {
  type        = string
  description = "Path of clusters/<environment>/root.yaml, the root Application as Git keeps it; applied once, then Argo CD owns it."

  validation {
    condition     = endswith(var.root_application_file, "root.yaml")
    error_message = "root_application_file must be a clusters/<environment>/root.yaml."
  }
}

variable "project_files" {
  type        = list(string)
  description = "Paths of the AppProjects the root Application needs before it can sync (platform/argocd/projects/platform.yaml)."

  validation {
    condition     = length(var.project_files) > 0 && alltrue([for f in var.project_files : endswith(f, ".yaml")])
    error_message = "project_files must list at least one .yaml file."
  }
}

variable "cluster_annotations" {
  type        = map(string)
  description = "Annotations of the cluster Secret: role ARNs, bucket names and other facts the ApplicationSets template into Helm values (gitops_repo_url and gitops_repo_revision also point the root Application)."

  validation {
    condition     = alltrue([for k in ["gitops_repo_url", "gitops_repo_revision"] : contains(keys(var.cluster_annotations), k)])
    error_message = "cluster_annotations must carry gitops_repo_url and gitops_repo_revision."
  }
}

variable "cluster_labels" {
  type        = map(string)
  description = "Extra labels of the cluster Secret (the `environment` label is always set)."
  default     = {}

  validation {
    condition     = !contains(keys(var.cluster_labels), "environment")
    error_message = "cluster_labels must not set environment; the module sets it from var.environment."
  }
}
