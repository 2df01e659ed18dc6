locals {
  # The network stack tags its subnets for a cluster of this name.
  cluster_name = "${var.name_prefix}-${var.environment}"
  network      = data.terraform_remote_state.network.outputs

  tags = merge(var.tags, {
    environment = var.environment
    stack       = "cluster"
    managed-by  = "terraform"
    repository  = "platform/infra/aws"
  })

  admin_access_entries = {
    for index, arn in var.admin_principal_arns : "admin-${index}" => {
      principal_arn = arn

      policy_associations = {
        cluster-admin = {
          policy_arn   = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
  }
}

data "aws_caller_identity" "current" {}

data "terraform_remote_state" "network" {
  backend = "s3"

  config = {
    bucket = var.state_bucket
    key    = "${var.environment}/network.tfstate"
    region = var.aws_region
  }
}

module "eks" {
  #checkov:skip=CKV_TF_1:registry modules are addressed by version, not commit; the exact version is pinned (CKV_TF_2 passes)
  source  = "terraform-aws-modules/eks/aws"
  version = "21.19.0"

  name               = local.cluster_name
  kubernetes_version = var.kubernetes_version

  vpc_id                   = local.network.vpc_id
  subnet_ids               = local.network.private_subnet_ids
  control_plane_subnet_ids = local.network.intra_subnet_ids

  endpoint_private_access      = true
  endpoint_public_access       = var.endpoint_public_access
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs

  # Every control plane log type: audit for who did what, the others for diagnosing.
  enabled_log_types   = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  deletion_protection = var.deletion_protection

  # Kubernetes Secrets encrypted with the module's own KMS key (rotated yearly).
  encryption_config = { resources = ["secrets"] }

  # Whoever applies this stack (the platform team's role, or CI) administers the cluster,
  # so the bootstrap stack can install Flux with the same credentials.
  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = true
  access_entries                           = local.admin_access_entries

  # Every add-on at the exact build var.addon_versions names, never most_recent: that
  # would move an add-on on whichever plan follows an AWS release, unreviewed.
  addons = {
    # The VPC CNI enforces Kubernetes NetworkPolicies itself (its network policy agent),
    # so the policies every service and the Flux controllers ship take effect without
    # another CNI. Installed before the nodes: they join with policy enforcement on.
    vpc-cni = {
      before_compute = true
      addon_version  = var.addon_versions["vpc-cni"]
      most_recent    = false

      configuration_values = jsonencode({
        enableNetworkPolicy = "true"
      })
    }
    # The agent behind EKS Pod Identity: the buckets' associations below need it on every node.
    eks-pod-identity-agent = {
      before_compute = true
      addon_version  = var.addon_versions["eks-pod-identity-agent"]
      most_recent    = false
    }
    kube-proxy = {
      addon_version = var.addon_versions["kube-proxy"]
      most_recent   = false
    }
    coredns = {
      addon_version = var.addon_versions["coredns"]
      most_recent   = false
    }
  }

  eks_managed_node_groups = {
    system = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.system_node_group.instance_types
      capacity_type  = var.system_node_group.capacity_type
      min_size       = var.system_node_group.min_size
      max_size       = var.system_node_group.max_size
      desired_size   = var.system_node_group.desired_size
      labels         = { "platform.example/node-pool" = "system" }

      block_device_mappings = {
        root = {
          device_name = "/dev/xvda"
          ebs         = {
            volume_size           = var.system_node_group.disk_size_gib
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }
    }

    # GPU nodes for vLLM (llmops/llm-serving/vllm): the NVIDIA AMI has the driver; the
    # taint keeps every pod that does not tolerate nvidia.com/gpu (and so does not pay
    # for a GPU) off these nodes, the label is what vLLM's nodeSelector asks for.
    gpu = {
      ami_type       = "AL2023_x86_64_NVIDIA"
      instance_types = var.gpu_node_group.instance_types
      capacity_type  = var.gpu_node_group.capacity_type
      min_size       = var.gpu_node_group.min_size
      max_size       = var.gpu_node_group.max_size
      desired_size   = var.gpu_node_group.desired_size
      labels         = { "platform.example/node-pool" = "gpu" }

      taints = {
        gpu = {
          key    = "nvidia.com/gpu"
          value  = "true"
          effect = "NO_SCHEDULE"
        }
      }
      block_device_mappings = {
        root = {
          device_name = "/dev/xvda"
          ebs         = {
            # Model weights and the CUDA images are large.
            volume_size           = var.gpu_node_group.disk_size_gib
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }
    }
  }

  tags = local.tags
}
