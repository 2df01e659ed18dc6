# terraform -chdir=infra/aws/cluster apply -var-file=../environments/prod/cluster.tfvars
environment         = "prod"
aws_region          = "eu-west-1"
state_bucket        = "example-platform-terraform-state"
kubernetes_version  = "1.34"
deletion_protection = true

# The API is reachable only inside the VPC (a VPN or the CI runners in the VPC).
endpoint_public_access = false

# IAM roles given cluster-admin besides whoever applies the stack, e.g.
# ["arn:aws:iam::111122223333:role/platform-admins"].
admin_principal_arns = []

system_node_group = {
  instance_types = ["m6i.xlarge"]
  min_size       = 3
  desired_size   = 3
  max_size       = 9
}

# vLLM's GPU (llmops/llm-serving/vllm asks for one nvidia.com/gpu).
gpu_node_group = {
  instance_types = ["g5.xlarge"]
  min_size       = 1
  desired_size   = 1
  max_size       = 2
}
