output "cluster_name" {
  description = "Name of the EKS cluster (the bootstrap stack's and `aws eks update-kubeconfig --name`'s)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the cluster's Kubernetes API."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64-encoded CA certificate of the Kubernetes API."
  value       = module.eks.cluster_certificate_authority_data
}

output "cluster_version" {
  description = "Kubernetes version the control plane runs."
  value       = module.eks.cluster_version
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster, for controllers that still use IRSA."
  value       = module.eks.oidc_provider_arn
}

output "node_security_group_id" {
  description = "Security group of the nodes (for database or cache security groups that admit the cluster)."
  value       = module.eks.node_security_group_id
}

output "aws_region" {
  description = "Region of the cluster and the buckets."
  value       = var.aws_region
}

output "buckets" {
  description = "The platform buckets by purpose: name, ARN, and the namespace/service account that may use it."
  value       = {
    for key, bucket in aws_s3_bucket.workload : key => {
      name            = bucket.id
      arn             = bucket.arn
      namespace       = var.bucket_workloads[key].namespace
      service_account = var.bucket_workloads[key].service_account
      role_arn        = aws_iam_role.workload[key].arn
    }
  }
}

output "buckets_kms_key_arn" {
  description = "KMS key encrypting the platform buckets."
  value       = aws_kms_key.buckets.arn
}
