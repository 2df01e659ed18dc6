# terraform -chdir=infra/aws/cluster apply -var-file=../environments/dev/cluster.tfvars
environment         = "dev"
aws_region          = "eu-west-1"
state_bucket        = "example-platform-terraform-state"
kubernetes_version  = "1.34"
deletion_protection = false

endpoint_public_access = true
# The operators' and CI's egress addresses (a documentation range here: replace it).
endpoint_public_access_cidrs = ["203.0.113.0/24"]

# IAM roles given cluster-admin besides whoever applies the stack, e.g.
# ["arn:aws:iam::111122223333:role/platform-admins"].
admin_principal_arns = []

system_node_group = {
  instance_types = ["t3.large"]
  min_size       = 2
  desired_size   = 2
  max_size       = 4
}

# vLLM's GPU (llmops/llm-serving/vllm asks for one nvidia.com/gpu).
gpu_node_group = {
  instance_types = ["g5.xlarge"]
  min_size       = 0
  desired_size   = 0
  max_size       = 1
}
