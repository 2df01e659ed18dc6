locals {
  cluster = data.terraform_remote_state.cluster.outputs

  tags = merge(var.tags, {
    environment = var.environment
    stack       = "bootstrap"
    managed-by  = "terraform"
    repository  = "platform/infra/aws"
  })

  # What the cluster stack made, for Flux's postBuild substitution (${MLFLOW_BUCKET}, ...).
  # Names only: credentials come from EKS Pod Identity.
  platform_settings = {
    ENVIRONMENT          = var.environment
    CLUSTER_NAME         = local.cluster.cluster_name
    AWS_REGION           = local.cluster.aws_region
    MLFLOW_BUCKET        = local.cluster.buckets["mlflow-artifacts"].name
    TEMPO_BUCKET         = local.cluster.buckets["tempo-traces"].name
    QDRANT_BACKUP_BUCKET = local.cluster.buckets["qdrant-backups"].name
  }
}

data "terraform_remote_state" "cluster" {
  backend = "s3"

  config = {
    bucket = var.state_bucket
    key    = "${var.environment}/cluster.tfstate"
    region = var.aws_region
  }
}

data "aws_secretsmanager_secret_version" "deploy_key" {
  secret_id = var.deploy_key_secret_id
}

# `flux bootstrap git` as a resource: commits gotk-components.yaml and gotk-sync.yaml to
# clusters/<environment>/flux-system/ (replacing the seed's placeholder URL), installs the
# controllers and creates the flux-system deploy-key Secret in the cluster.
resource "flux_bootstrap_git" "this" {
  path     = "clusters/${var.environment}"
  interval = var.sync_interval

  # The image automation the overlays' $imagepolicy markers need: ImageRepository and
  # ImagePolicy (reflector), ImageUpdateAutomation (automation).
  components_extra = ["image-reflector-controller", "image-automation-controller"]

  # The manifests come from the provider binary: nothing is downloaded from github.com
  # during apply, and the Flux version moves only with the pinned provider version.
  embedded_manifests = true

  # Deny ingress to the controllers from other namespaces (enforced by the VPC CNI).
  network_policy = true
}

# The cluster stack's outputs, where Flux Kustomizations read them with
# spec.postBuild.substituteFrom (see infra/README.md).
resource "kubernetes_config_map_v1" "platform_settings" {
  metadata {
    name      = "platform-settings"
    namespace = "flux-system"
    labels    = {
      "app.kubernetes.io/managed-by" = "terraform"
      "app.kubernetes.io/part-of"    = "platform"
    }
  }

  data = local.platform_settings

  depends_on = [flux_bootstrap_git.this]
}
