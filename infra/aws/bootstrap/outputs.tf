output "flux_sync_path" {
  description = "Folder of the GitOps repository this cluster's Flux reconciles."
  value       = flux_bootstrap_git.this.path
}

output "flux_repository_files" {
  description = "Files the bootstrap committed to the GitOps repository (gotk-components.yaml, gotk-sync.yaml, kustomization.yaml)."
  value       = keys(flux_bootstrap_git.this.repository_files)
}

output "platform_settings" {
  description = "The values of the ConfigMap flux-system/platform-settings that Flux substitutes into manifests."
  value       = local.platform_settings
}
