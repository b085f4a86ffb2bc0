variable "name" {
  type        = string
  description = "Cluster name, the environment's name_prefix (for example churn-dev)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter (the name_prefix, e.g. churn-dev)."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version of the control plane and nodes, pinned (for example 1.33)."

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as 1.33."
  }
}

variable "vpc_id" {
  type        = string
  description = "ID of the VPC the cluster runs in."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets, one per zone, for the control-plane network interfaces and the nodes."

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "EKS needs private subnets in at least two zones."
  }
}

variable "public_access_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the API endpoint from the internet. Empty (the default) keeps the endpoint private only."
  default     = []

  validation {
    condition     = alltrue([for c in var.public_access_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "public_access_cidrs must be valid CIDRs and never 0.0.0.0/0."
  }
}

variable "admin_principal_arns" {
  type        = list(string)
  description = "IAM roles or users granted cluster admin through access entries (break-glass, platform team); the caller is added by grant_caller_admin."
  default     = []

  validation {
    condition     = alltrue([for a in var.admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/", a))])
    error_message = "admin_principal_arns must be IAM role or user ARNs."
  }
}

variable "grant_caller_admin" {
  type        = bool
  description = "Give the principal that runs `tofu apply` an admin access entry, so it can install Argo CD; an entry like any other, removable later."
  default     = true
}

variable "node_instance_types" {
  type        = list(string)
  description = "Instance types of the managed node group, in order of preference."

  validation {
    condition     = length(var.node_instance_types) > 0
    error_message = "node_instance_types must list at least one instance type."
  }
}

variable "node_capacity_type" {
  type        = string
  description = "ON_DEMAND or SPOT."
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_scaling" {
  type = object({
    min_size     = number
    desired_size = number
    max_size     = number
  })
  description = "Minimum, desired and maximum node count of the managed node group."

  validation {
    condition     = var.node_scaling.min_size >= 1 && var.node_scaling.min_size <= var.node_scaling.desired_size && var.node_scaling.desired_size <= var.node_scaling.max_size
    error_message = "node_scaling must satisfy 1 <= min_size <= desired_size <= max_size."
  }
}

variable "node_disk_size_gib" {
  type        = number
  description = "Root volume size of each node, GiB (gp3, encrypted)."
  default     = 50

  validation {
    condition     = var.node_disk_size_gib >= 20 && var.node_disk_size_gib <= 1000
    error_message = "node_disk_size_gib must be between 20 and 1000."
  }
}

variable "addon_versions" {
  type        = map(string)
  description = "Pinned version of each EKS add-on: vpc-cni, coredns, kube-proxy, eks-pod-identity-agent, aws-ebs-csi-driver. `aws eks describe-addon-versions --kubernetes-version <v>` lists the valid ones."

  validation {
    condition = alltrue([
      for a in ["vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver"] : can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+-eksbuild\\.[0-9]+$", var.addon_versions[a]))
    ])
    error_message = "addon_versions must pin vpc-cni, coredns, kube-proxy, eks-pod-identity-agent and aws-ebs-csi-driver to vX.Y.Z-eksbuild.N."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days to keep control-plane logs in CloudWatch Logs."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (for example 30, 90, 365)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes them."
  default     = {}
}
