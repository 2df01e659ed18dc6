"""Review of changes to the GitOps repository: diffs, approvals and the automatic checks."""
