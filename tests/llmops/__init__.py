"""Tests of llmops/: the runbooks, their evaluation set, and the shared manifests."""
