locals {
  name = "${var.name_prefix}-${var.environment}"
  # The cluster stack names its cluster the same way; the subnet tags below let the AWS
  # load balancer controller find the subnets of that cluster.
  cluster_name = local.name
  azs          = data.aws_availability_zones.selected.names

  tags = merge(var.tags, {
    environment = var.environment
    stack       = "network"
    managed-by  = "terraform"
    repository  = "platform/infra/aws"
  })
}

# Exactly the listed zones: a zone AWS adds to the region later never joins the VPC by
# itself (adding a subnet is a reviewed change of the tfvars).
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-id"
    values = var.availability_zone_ids
  }
}

module "vpc" {
  #checkov:skip=CKV_TF_1:registry modules are addressed by version, not commit; the exact version is pinned (CKV_TF_2 passes)
  source  = "terraform-aws-modules/vpc/aws"
  version = "6.6.0"

  name = local.name
  cidr = var.vpc_cidr
  azs  = local.azs

  # Nodes and pods (the VPC CNI gives pods VPC addresses, hence the large /20s at a /16);
  # the control plane's network interfaces in the intra subnets, which have no route out;
  # load balancers only in the public ones. Six private subnets fill the first 96 /24s
  # (at a /16), so the small ones start after them and never overlap.
  private_subnets = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, index)]
  public_subnets  = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, index + 96)]
  intra_subnets   = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, index + 104)]

  enable_dns_hostnames    = true
  enable_nat_gateway      = true
  single_nat_gateway      = var.single_nat_gateway
  one_nat_gateway_per_az  = !var.single_nat_gateway
  map_public_ip_on_launch = false

  public_subnet_tags = {
    "kubernetes.io/role/elb"                      = "1"
    "kubernetes.io/cluster/${local.cluster_name}" = "shared"
  }
  private_subnet_tags = {
    "kubernetes.io/role/internal-elb"             = "1"
    "kubernetes.io/cluster/${local.cluster_name}" = "shared"
  }

  # The default security group allows nothing: every workload gets its own group.
  manage_default_security_group  = true
  default_security_group_ingress = []
  default_security_group_egress  = []

  enable_flow_log                                 = true
  create_flow_log_cloudwatch_log_group            = true
  create_flow_log_cloudwatch_iam_role             = true
  flow_log_max_aggregation_interval               = 60
  flow_log_cloudwatch_log_group_retention_in_days = var.flow_log_retention_days

  tags = local.tags
}
