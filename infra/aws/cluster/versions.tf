# The cluster stack: the EKS cluster with its node groups and add-ons, the S3 buckets of
# the platform's stateful services and the Pod Identity associations that let exactly
# those services reach them. Reads the network stack's outputs from its state.
terraform {
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "6.38.0"
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
