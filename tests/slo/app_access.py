"""What SLO page tests reach inside a running app: its SLO runtime and GitOps clone."""

from __future__ import annotations

from fastapi.testclient import TestClient

from portal.integrations.gitops import GitOpsRepo
from portal.slo.runtime import SLORuntime

AUTHOR = ("Test", "test@example.invalid")


def slo_runtime(client: TestClient) -> SLORuntime:
    runtime: SLORuntime = client.app.state.slo  # type: ignore[attr-defined]
    return runtime


def gitops(client: TestClient) -> GitOpsRepo:
    repo = slo_runtime(client).gitops
    assert repo is not None
    return repo()
