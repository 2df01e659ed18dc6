# The network stack: one VPC per environment, the subnets the EKS cluster uses.
# State lives in S3 with S3-native locking (use_lockfile), which needs Terraform 1.11 or
# newer; the bucket, key and region come from environments/<env>/network.s3.tfbackend.
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

# Credentials come from the environment (AWS_PROFILE, SSO, or the CI runner's role); no
# key is ever written here. Every resource the stack creates carries these tags.
provider "aws" {
  region = var.aws_region

  default_tags {
    tags = local.tags
  }
}
