# terraform -chdir=infra/aws/bootstrap apply -var-file=../environments/prod/bootstrap.tfvars
environment           = "prod"
aws_region            = "eu-west-1"
state_bucket          = "example-platform-terraform-state"
gitops_repository_url = "ssh://git@git.example.invalid/platform/gitops.git"
gitops_branch         = "main"
# The deploy key's private half lives in Secrets Manager under this name (infra/README.md).
deploy_key_secret_id = "platform/prod/flux-deploy-key"
