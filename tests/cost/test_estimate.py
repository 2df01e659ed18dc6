"""The /cost page and GET /api/cost, estimated from a real GitOps repository's main."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.cost.runtime import CostRuntime
from portal.integrations.gitops import GitOpsRepo
from tests.conftest import ADA, REPO

AUTHOR = ("Test", "test@example.invalid")


def _deployment(name: str, replicas: int, cpu: str, memory: str) -> bytes:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: app
          image: example.invalid/{name}:1
          resources: {{requests: {{cpu: {cpu}, memory: {memory}}}}}
""".encode()


HPA = b"""apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: grafana}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: grafana}
  minReplicas: 3
  maxReplicas: 6
"""


def _service(name: str, base: dict[str, bytes], overlays: dict[str, bytes]) -> dict[str, bytes]:
    files = {f"services/{name}/deploy/base/{file}": text for file, text in base.items()}
    resources = "\n".join(f"  - {file}" for file in base)
    files[f"services/{name}/deploy/base/kustomization.yaml"] = f"resources:\n{resources}\n".encode()
    for env, text in overlays.items():
        files[f"services/{name}/deploy/overlays/{env}/kustomization.yaml"] = text
    return files


@pytest.fixture
def cost_client(settings: Settings) -> Iterator[TestClient]:
    proxied = settings.model_copy(
        update={"auth_mode": AuthMode.TRUSTED_HEADER, "catalog_paths": [str(REPO / "catalog")]}
    )
    initialise(proxied, gitops=True)
    with TestClient(create_app(proxied)) as client:
        runtime: CostRuntime = client.app.state.cost  # type: ignore[attr-defined]
        repo: GitOpsRepo = client.app.state.slo.gitops()  # type: ignore[attr-defined]
        ok = b"resources: [../../base]\n"
        files = _service(
            "payments", {"app.yaml": _deployment("payments", 2, "500m", "1Gi")}, {"dev": ok}
        )
        files |= _service(
            "grafana",
            {"app.yaml": _deployment("grafana", 1, "250m", "512Mi"), "hpa.yaml": HPA},
            {"dev": ok, "prod": b"resources: [../../missing]\n"},
        )
        repo.create_branch("scaffold/two", files, "Add two services", AUTHOR)
        repo.merge("scaffold/two", "Merge", AUTHOR)
        runtime.cache.clear()
        yield client


def test_estimates_per_service_team_and_environment(cost_client: TestClient) -> None:
    body = cost_client.get("/api/cost", headers=ADA).json()
    services = {row["service"]: row for row in body["services"]}
    # payments: 2 replicas x (0.5 core x 0.031611 + 1 GiB x 0.004237) = 0.0400850/h
    # x 730 h = 29.262050 -> 29.26 USD
    assert services["payments"]["figure"]["monthly"] == "29.26"
    assert services["payments"]["team"] is None
    # grafana: HPA minReplicas 3 (not spec.replicas 1) x (0.25 x 0.031611 + 0.5 x 0.004237)
    # = 0.03006375/h x 730 h = 21.9465375 -> 21.95 USD; prod does not build and adds nothing.
    grafana = services["grafana"]
    assert grafana["figure"]["monthly"] == "21.95"
    assert grafana["team"] == "sre"
    prod = next(env for env in grafana["environments"] if env["environment"] == "prod")
    assert prod["monthly"] is None and "does not build" in prod["error"]
    assert grafana["figure"]["source"] == "estimate from manifests on main"
    # CPU share of payments: 0.0158055 / 0.0200425 = 78.86 %
    assert services["payments"]["figure"]["cpu_share"] == "78.9"
    assert [
        row["service"] for row in cost_client.get("/api/cost?sort=cost").json()["services"]
    ] == [
        "payments",
        "grafana",
    ]


def test_the_page_lists_filters_and_explains(cost_client: TestClient) -> None:
    html = cost_client.get("/cost", headers=ADA).text
    assert "29.26 USD" in html and "21.95 USD" in html
    assert "does not build" in html and "No measured source is configured" in html
    filtered = cost_client.get("/cost?team=sre", headers=ADA).text
    assert 'data-service="grafana"' in filtered and 'data-service="payments"' not in filtered
    assert [r["service"] for r in cost_client.get("/api/cost?team=sre").json()["services"]] == [
        "grafana"
    ]
    assert cost_client.get("/api/cost?sort=bogus").status_code == 422


def test_no_services_is_an_empty_state(settings: Settings) -> None:
    initialise(settings, gitops=True)
    with TestClient(create_app(settings)) as client:
        html = client.get("/cost").text
        assert 'id="cost-empty"' in html and "nothing to estimate" in html
        assert client.get("/api/cost").json()["services"] == []
