variable "environment" {
  description = "Environment this stack serves; names the cluster and matches gitops-repo/clusters/<environment>."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod (a folder under gitops-repo/clusters/)."
  }
}

variable "aws_region" {
  description = "AWS region of the cluster and its buckets (the network stack's region)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region name such as eu-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every name this platform creates in the account; the same value as the network stack's."
  type        = string
  default     = "platform"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3 to 20 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "state_bucket" {
  description = "S3 bucket holding the Terraform state of every stack (the bucket of environments/<env>/*.s3.tfbackend)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket))
    error_message = "state_bucket must be an S3 bucket name (3 to 63 lower-case letters, digits, dots or dashes)."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the node groups, e.g. 1.34."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as 1.34."
  }
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API on a public endpoint (limited to endpoint_public_access_cidrs); false keeps it inside the VPC."
  type        = bool
  default     = false
}

variable "endpoint_public_access_cidrs" {
  description = "Networks allowed to reach the public API endpoint (the operators' and CI's egress addresses)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.endpoint_public_access_cidrs : can(cidrnetmask(cidr)) && cidr != "0.0.0.0/0"])
    error_message = "endpoint_public_access_cidrs must be IPv4 CIDR blocks, and never 0.0.0.0/0."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the cluster until this is turned off (on for prod)."
  type        = bool
  default     = true
}

variable "admin_principal_arns" {
  description = "IAM roles or users given cluster-admin through EKS access entries (the platform team's SSO role, the CI role); not the principal that applies the stack, which is admin already."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$", arn))])
    error_message = "admin_principal_arns must be IAM role or user ARNs (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "system_node_group" {
  description = "The general-purpose managed node group (platform services and the teams' workloads)."
  type        = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    capacity_type  = optional(string, "ON_DEMAND")
    disk_size_gib  = optional(number, 50)
  })

  validation {
    condition     = var.system_node_group.min_size >= 1 && var.system_node_group.min_size <= var.system_node_group.desired_size && var.system_node_group.desired_size <= var.system_node_group.max_size
    error_message = "system_node_group needs 1 <= min_size <= desired_size <= max_size."
  }

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.system_node_group.capacity_type)
    error_message = "system_node_group.capacity_type must be ON_DEMAND or SPOT."
  }

  validation {
    condition     = length(var.system_node_group.instance_types) > 0 && var.system_node_group.disk_size_gib >= 20
    error_message = "system_node_group needs at least one instance type and disk_size_gib of 20 or more."
  }
}

variable "gpu_node_group" {
  description = "The GPU node group for LLM serving: labelled platform.example/node-pool=gpu and tainted nvidia.com/gpu:NoSchedule (llmops/llm-serving/vllm tolerates it). Sizes of 0 leave the group empty (use Ollama on CPU)."
  type        = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    capacity_type  = optional(string, "ON_DEMAND")
    disk_size_gib  = optional(number, 200)
  })

  validation {
    condition     = var.gpu_node_group.min_size >= 0 && var.gpu_node_group.min_size <= var.gpu_node_group.desired_size && var.gpu_node_group.desired_size <= var.gpu_node_group.max_size && var.gpu_node_group.max_size >= 1
    error_message = "gpu_node_group needs 0 <= min_size <= desired_size <= max_size and max_size >= 1."
  }

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.gpu_node_group.capacity_type)
    error_message = "gpu_node_group.capacity_type must be ON_DEMAND or SPOT."
  }

  validation {
    # NVIDIA GPU families: g4dn, g5, g6, g6e, p4d, p5 and newer. The NVIDIA AMI boots on
    # nothing else.
    condition     = length(var.gpu_node_group.instance_types) > 0 && alltrue([for type in var.gpu_node_group.instance_types : can(regex("^(g[4-9][a-z]*|p[3-9][a-z]*)\\.", type))])
    error_message = "gpu_node_group.instance_types must be NVIDIA GPU instance types (g4dn, g5, g6, p4d, p5, ...)."
  }
}

variable "addon_versions" {
  description = "Exact version of each EKS add-on the cluster installs (coredns, kube-proxy, vpc-cni, eks-pod-identity-agent), built for kubernetes_version. A new Kubernetes version needs new builds: list them with `aws eks describe-addon-versions --kubernetes-version <x.y> --addon-name <name>`."
  type        = map(string)

  # Builds for Kubernetes 1.34, every environment's kubernetes_version. coredns, kube-proxy
  # and vpc-cni: the 1.34 rows of the Amazon EKS User Guide's tables of the latest build
  # per Kubernetes version (managing-coredns, managing-kube-proxy and managing-vpc-cni
  # pages). The guide has no such table for eks-pod-identity-agent, whose builds do not
  # follow the Kubernetes version: v1.3.9-eksbuild.3 is the build public EKS
  # configurations moved to for 1.34; `aws eks describe-addon-versions
  # --kubernetes-version 1.34 --addon-name eks-pod-identity-agent` confirms it before the
  # first apply.
  default = {
    coredns                = "v1.12.4-eksbuild.1"
    kube-proxy             = "v1.34.1-eksbuild.2"
    vpc-cni                = "v1.20.4-eksbuild.1"
    eks-pod-identity-agent = "v1.3.9-eksbuild.3"
  }

  # An environment that overrides the map pins every add-on, not some: main.tf reads all four.
  validation {
    condition     = length(setsymmetricdifference(keys(var.addon_versions), ["coredns", "kube-proxy", "vpc-cni", "eks-pod-identity-agent"])) == 0
    error_message = "addon_versions must name exactly coredns, kube-proxy, vpc-cni and eks-pod-identity-agent."
  }

  validation {
    condition     = alltrue([for version in values(var.addon_versions) : can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+-eksbuild\\.[0-9]+$", version))])
    error_message = "addon_versions values must be exact EKS add-on versions such as v1.20.4-eksbuild.1."
  }

  # kube-proxy is built per Kubernetes minor version: a control plane upgrade that leaves
  # the pins behind fails here, at plan, instead of at the add-on update.
  validation {
    condition     = startswith(lookup(var.addon_versions, "kube-proxy", ""), "v${var.kubernetes_version}.")
    error_message = "addon_versions[\"kube-proxy\"] must be a build for kubernetes_version (v<kubernetes_version>.<patch>-eksbuild.<n>): pin the add-ons of the new Kubernetes version."
  }
}

variable "bucket_workloads" {
  description = "The platform's S3 buckets, each with the Kubernetes service account (namespace and name) its Pod Identity association serves, and how many days old versions are kept."
  type        = map(object({
    namespace               = string
    service_account         = string
    noncurrent_version_days = number
  }))
  default = {
    # MLflow's artifact store (gitops-repo/infrastructure/base/mlflow).
    mlflow-artifacts = { namespace = "mlflow", service_account = "mlflow", noncurrent_version_days = 90 }

    # Grafana Tempo's trace blocks (gitops-repo/infrastructure/base/monitoring/tempo.yaml);
    # the tempo chart's service account is named after the release.
    tempo-traces = { namespace = "monitoring", service_account = "tempo", noncurrent_version_days = 7 }

    # Qdrant snapshots copied off the pod (llmops/vector-db, README "Backups").
    qdrant-backups = { namespace = "vector-db", service_account = "qdrant-backup", noncurrent_version_days = 30 }
  }

  validation {
    condition     = alltrue([for key, bucket in var.bucket_workloads : can(regex("^[a-z][a-z0-9-]{2,19}$", key))])
    error_message = "bucket_workloads keys name the buckets: 3 to 20 lower-case letters, digits or dashes."
  }

  validation {
    condition     = alltrue([for bucket in var.bucket_workloads : can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", bucket.namespace)) && can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", bucket.service_account))])
    error_message = "bucket_workloads namespace and service_account must be Kubernetes names (lower-case DNS labels)."
  }

  validation {
    condition     = alltrue([for bucket in var.bucket_workloads : bucket.noncurrent_version_days >= 1])
    error_message = "bucket_workloads noncurrent_version_days must be 1 or more."
  }
}

variable "tags" {
  description = "Extra tags for every resource (cost centre, owner); environment, stack and managed-by are always set."
  type        = map(string)
  default     = {}
}
