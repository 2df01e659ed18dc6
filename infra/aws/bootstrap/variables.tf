variable "environment" {
  description = "Environment to bootstrap; Flux syncs the GitOps repository's clusters/<environment> folder."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod (a folder under gitops-repo/clusters/)."
  }
}

variable "aws_region" {
  description = "AWS region of the cluster (the cluster stack's region)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region name such as eu-west-1."
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

variable "gitops_repository_url" {
  description = "SSH URL of the GitOps repository Flux syncs (the repository the portal pushes to, PORTAL_GITOPS_REMOTE), e.g. ssh://git@github.com/acme/gitops.git."
  type        = string

  validation {
    # ssh:// with a user and no password: the key authenticates, never a URL secret.
    condition     = can(regex("^ssh://[A-Za-z0-9._-]+@[A-Za-z0-9.-]+(:[0-9]+)?/[^ ]+$", var.gitops_repository_url))
    error_message = "gitops_repository_url must be an ssh:// URL with a user and no password, e.g. ssh://git@github.com/acme/gitops.git."
  }
}

variable "gitops_branch" {
  description = "Branch Flux reconciles (PORTAL_GITOPS_BRANCH)."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.gitops_branch)) && !startswith(var.gitops_branch, "-")
    error_message = "gitops_branch must be a git branch name."
  }
}

variable "deploy_key_secret_id" {
  description = "Secrets Manager secret (name or ARN) whose value is the PEM or OpenSSH private key of the GitOps repository's deploy key (write access: Flux commits its components and image updates)."
  type        = string

  validation {
    condition     = length(var.deploy_key_secret_id) > 0 && !can(regex("PRIVATE KEY", var.deploy_key_secret_id))
    error_message = "deploy_key_secret_id must name a Secrets Manager secret, not hold the key itself."
  }
}

variable "git_author_name" {
  description = "Author of the commits Flux's bootstrap makes (gotk-components.yaml, gotk-sync.yaml)."
  type        = string
  default     = "Flux"

  validation {
    condition     = length(trimspace(var.git_author_name)) > 0
    error_message = "git_author_name must not be empty."
  }
}

variable "git_author_email" {
  description = "E-mail of the bootstrap commits' author."
  type        = string
  default     = "flux@platform.example"

  validation {
    condition     = can(regex("^[^@ ]+@[^@ ]+$", var.git_author_email))
    error_message = "git_author_email must be an e-mail address."
  }
}

variable "sync_interval" {
  description = "How often Flux's GitRepository polls the branch (a Go duration such as 1m0s)."
  type        = string
  default     = "1m0s"

  validation {
    condition     = can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.sync_interval)) && length(var.sync_interval) > 0
    error_message = "sync_interval must be a duration such as 1m0s, 30s or 1h."
  }
}

variable "tags" {
  description = "Extra tags for every AWS resource (cost centre, owner); environment, stack and managed-by are always set."
  type        = map(string)
  default     = {}
}
