# The bootstrap stack: installs Flux on the environment's cluster and points it at the
# GitOps repository's clusters/<environment> folder, then hands the cluster stack's
# outputs (bucket names, region) to Flux as the ConfigMap flux-system/platform-settings.
terraform {
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "6.38.0"
    }
    flux = {
      source  = "fluxcd/flux"
      version = "1.8.5"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "3.0.1"
    }
  }

  backend "s3" {
    use_lockfile = true
    encrypt      = true
  }
}

# Credentials come from the environment (AWS_PROFILE, SSO, or the CI runner's role).
provider "aws" {
  region = var.aws_region

  default_tags {
    tags = local.tags
  }
}

# Short-lived Kubernetes tokens from `aws eks get-token` with the same AWS credentials;
# the cluster stack gave its creator (and admin_principal_arns) cluster-admin.
provider "kubernetes" {
  host                   = local.cluster.cluster_endpoint
  cluster_ca_certificate = base64decode(local.cluster.cluster_certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", local.cluster.cluster_name, "--region", var.aws_region]
  }
}

provider "flux" {
  kubernetes = {
    host                   = local.cluster.cluster_endpoint
    cluster_ca_certificate = base64decode(local.cluster.cluster_certificate_authority_data)
    exec                   = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", local.cluster.cluster_name, "--region", var.aws_region]
    }
  }
  git = {
    url          = var.gitops_repository_url
    branch       = var.gitops_branch
    author_name  = var.git_author_name
    author_email = var.git_author_email
    ssh          = {
      username = "git"
      # The deploy key's private half is read from Secrets Manager at plan time; it is
      # never in this repository (it does reach the state, which is encrypted in S3).
      private_key = data.aws_secretsmanager_secret_version.deploy_key.secret_string
    }
  }
}
