output "vpc_id" {
  description = "ID of the VPC the cluster stack places its cluster in."
  value       = module.vpc.vpc_id
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  value       = module.vpc.vpc_cidr_block
}

output "azs" {
  description = "Availability zones the subnets span."
  value       = module.vpc.azs
}

output "private_subnet_ids" {
  description = "Subnets of the worker nodes and pods (egress through NAT)."
  value       = module.vpc.private_subnets
}

output "intra_subnet_ids" {
  description = "Subnets without a route out, for the EKS control plane's network interfaces."
  value       = module.vpc.intra_subnets
}

output "public_subnet_ids" {
  description = "Subnets of internet-facing load balancers and the NAT gateways."
  value       = module.vpc.public_subnets
}

output "nat_public_ips" {
  description = "Addresses the cluster's egress comes from (for allow lists of external systems)."
  value       = module.vpc.nat_public_ips
}
