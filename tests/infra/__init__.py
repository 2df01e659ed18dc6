"""Tests of infra/: the Terraform of the platform on AWS, checked without Terraform."""
