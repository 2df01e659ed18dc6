# terraform -chdir=infra/aws/network apply -var-file=../environments/dev/network.tfvars
environment             = "dev"
aws_region              = "eu-west-1"
vpc_cidr                = "10.10.0.0/16"
availability_zone_ids   = ["euw1-az1", "euw1-az2", "euw1-az3"]
single_nat_gateway      = true
flow_log_retention_days = 30
