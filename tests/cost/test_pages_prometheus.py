"""The cost pages over a real Prometheus holding 14 backfilled days (``tests/cost/conftest.py``).

The history ends on 15 March 2025 at midnight; the portal's clock reads 06:00 that day, so
the month to date is 1 to 14 March. ``ranker`` runs 12 hours a day with 2 cores, 8 GiB, a
GPU and a 100 GiB claim, held 24 core-hours, 96 GiB-hours, 12 GPU-hours and 1,200 PV
GiB-hours a day: 24 x 0.031611 + 96 x 0.004237 + 12 x 0.95 + 1200 x 0.00005479452 =
12.631169424 a day at OpenCost's default prices. Nothing here is faked: the figures go
from Prometheus through ``PrometheusCostSource`` and the runtime to the page and the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.config import AuthMode, Settings
from portal.cost.model import DEFAULT_PRICES, GIB
from portal.cost.rightsizing import MIB, DeployedContainer, recommend
from portal.cost.runtime import CostRuntime
from portal.integrations.prometheus import PrometheusClient
from portal.integrations.prometheus_cost import PrometheusCostSource
from portal.integrations.prometheus_local import free_port
from tests.conftest import ADA, CHECKOV_PATH, REPO
from tests.cost.openmetrics_history import Backfill

D = Decimal
RANKER_DAY = D("12.631169424")  # see the module's docstring


def _runtime(url: str, now: datetime) -> CostRuntime:
    source = PrometheusCostSource(PrometheusClient(url, timeout=30))
    return CostRuntime(None, prometheus=source, usage_metrics=source, clock=lambda: now)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The portal app; each test gives it its own cost runtime."""
    root: Path = tmp_path_factory.mktemp("cost-prometheus-pages")
    settings = Settings(
        data_dir=root / "var",
        database_url=None,
        catalog_paths=[],
        secret_key="test-secret-key",
        gitops_seed_dir=REPO / "gitops-repo",
        templates_dir=REPO / "templates",
        run_worker=False,
        checkov_path=CHECKOV_PATH,
        auth_mode=AuthMode.TRUSTED_HEADER,
    )
    with TestClient(create_app(settings)) as served:
        yield served


def _serve(client: TestClient, runtime: CostRuntime) -> None:
    runtime.refresh_now()
    client.app.state.cost = runtime  # type: ignore[attr-defined]


def test_month_to_date_and_projection_come_from_prometheus_to_the_cent(
    client: TestClient, backfilled_prometheus: Backfill
) -> None:
    now = backfilled_prometheus.end + timedelta(hours=6)
    runtime = _runtime(backfilled_prometheus.url, now)
    try:
        _serve(client, runtime)
        body = client.get("/api/cost", headers=ADA).json()
    finally:
        runtime.stop()
    rows = {row["service"]: row for row in body["services"]}
    ranker = rows["ranker"]
    # 14 days x 12.631169424 = 176.836371936; projected: + 17 days left (15..31, today
    # included) x the last 7 complete days' average (the same 12.631169424) = 391.566252144.
    assert ranker["month_to_date"]["amount"] == f"{RANKER_DAY * 14:.2f}" == "176.84"
    assert ranker["month_to_date"]["source"] == "Prometheus"
    assert ranker["projected"]["amount"] == "391.57"
    # Pods without the app label are counted on their own row, never dropped.
    assert sorted(rows) == ["", "checkout", "ranker", "search"]  # "": the unattributed row
    assert [source["error"] for source in body["sources"]] == [None]
    html = client.get("/cost", headers={**ADA, "Accept": "text/html"}).text
    assert "176.84" in html and "391.57" in html


def test_the_recommendation_follows_the_p95_rule_on_measured_usage(
    backfilled_prometheus: Backfill,
) -> None:
    source = PrometheusCostSource(PrometheusClient(backfilled_prometheus.url, timeout=30))
    usage = source.container_usage(
        "checkout", backfilled_prometheus.start, backfilled_prometheus.end
    )
    deployed = DeployedContainer("prod", "shop", "Deployment", "checkout", "app", D(1), 2 * GIB, 3)
    found = recommend([deployed], usage, {"prod": DEFAULT_PRICES})
    # staging's checkout is measured too: listed without advice, since main has no manifest.
    [advice] = [item for item in found if item.deployed is not None]
    assert {(item.environment, item.container) for item in found} == {
        ("prod", "app"),
        ("staging", "app"),
    }
    assert advice.cpu is not None and advice.memory is not None
    # p95 0.2 cores x 1.2 = 0.24 (already a 10m step); 512 MiB x 1.2 = 614.4 -> 615 MiB.
    assert advice.cpu.p95 == D("0.2") and advice.cpu.recommended == D("0.24")
    assert advice.memory.recommended == 615 * MIB
    # (1 - 0.24) x 3 x 730 x 0.031611 = 52.6133484; (2048 - 615) / 1024 x 3 x 730 x
    # 0.004237 = 12.985205068359375.
    assert advice.cpu.monthly_saving == D("52.6133484")
    assert advice.memory.monthly_saving == D("12.985205068359375")


def test_a_prometheus_that_is_down_is_named_and_no_figure_is_made_up(
    client: TestClient, backfilled_prometheus: Backfill
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    runtime = _runtime(down, backfilled_prometheus.end + timedelta(hours=6))
    try:
        _serve(client, runtime)
        response = client.get("/api/cost", headers=ADA)
        page = client.get("/cost/ranker", headers={**ADA, "Accept": "text/html"})
    finally:
        runtime.stop()
    assert response.status_code == 200
    body = response.json()
    assert body["services"] == []
    [source] = body["sources"]
    assert down in (source["error"] or "") or any(down in p for p in body["problems"]), body
    # Not on main and not measured: the service page says it is unknown, never a 500.
    assert page.status_code == 404
