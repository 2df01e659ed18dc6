"""Behaviour of the HTTP endpoints."""

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.main import app
from app.settings import METRICS_ENABLED, SERVICE_NAME

needs_metrics = pytest.mark.skipif(not METRICS_ENABLED, reason="metrics are disabled")


def _requests_total(route: str, code: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_requests_total", {"method": "GET", "route": route, "code": code}
    )
    return value or 0.0


def test_index_names_the_service(client: TestClient) -> None:
    """The root answers with the service name and version."""
    response = client.get("/")
    assert response.status_code == 200
    assert response.json()["service"] == SERVICE_NAME


def test_liveness(client: TestClient) -> None:
    """The liveness probe answers ok."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_once_started(client: TestClient) -> None:
    """The readiness probe answers ready while the lifespan runs."""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_not_ready_before_start() -> None:
    """Without the lifespan (not started yet), readiness fails so no traffic arrives."""
    app.state.ready = False
    response = TestClient(app).get("/readyz")
    assert response.status_code == 503


@needs_metrics
def test_requests_are_counted_by_route_and_code(client: TestClient) -> None:
    """Served requests increase the counter the SLO is computed from."""
    before_ok = _requests_total("/", "200")
    before_missing = _requests_total("unmatched", "404")
    client.get("/")
    client.get("/no/such/page")
    assert _requests_total("/", "200") == before_ok + 1
    assert _requests_total("unmatched", "404") == before_missing + 1


@needs_metrics
def test_metrics_exposition(client: TestClient) -> None:
    """/metrics serves the Prometheus text format, without counting the probes."""
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "http_requests_total" in response.text
    assert 'route="/healthz"' not in response.text


@pytest.mark.skipif(METRICS_ENABLED, reason="metrics are enabled")
def test_no_metrics_endpoint_when_disabled(client: TestClient) -> None:
    """With metrics disabled there is nothing to scrape."""
    assert client.get("/metrics").status_code == 404
