"""/cost, /cost/teams/{team} and GET /api/cost through the app: measured, estimated, failing.

One app per module: services on a real GitOps main (estimated with kustomize), the repo's
catalog for owners, a price sheet on main, and fake sources set per test with a fixed clock
(2024-03-15 12:00 UTC). Figures are hand-computed in the comments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.cost.runtime import CostRuntime, price_sheets_on_main
from portal.integrations.cost_metrics import (
    CostSource,
    CostSourceError,
    FakeCostSource,
    ResourceDay,
    Workload,
)
from portal.integrations.gitops import GitOpsRepo
from tests.conftest import ADA, CHECKOV_PATH, REPO, require_tool
from tests.cost.test_estimate import AUTHOR, HPA, _deployment, _service

D = Decimal
NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
HTML = {**ADA, "Accept": "text/html"}
HTMX = {**ADA, "HX-Request": "true"}


def _days(
    service: str,
    env: str,
    first: date,
    last: date,
    cpu: tuple[int, int | None],
    mem: tuple[int, int | None],
) -> list[ResourceDay]:
    """Every day ``first``..``last``: (request, usage) core-hours and GiB-hours held."""
    return [
        ResourceDay(
            workload=Workload(env, "apps", service),
            day=first + timedelta(days=n),
            hours=D(24),
            cpu_request_core_hours=D(cpu[0]),
            cpu_usage_core_hours=None if cpu[1] is None else D(cpu[1]),
            cpu_held_core_hours=D(cpu[0]),
            memory_request_gib_hours=D(mem[0]),
            memory_usage_gib_hours=None if mem[1] is None else D(mem[1]),
            memory_held_gib_hours=D(mem[0]),
        )
        for n in range((last - first).days + 1)
    ]


def measured_days() -> list[ResourceDay]:
    # grafana: 48 core-h x 0.031611 + 96 GiB-h x 0.004237 = 1.92408 a day, Feb 1 .. today.
    grafana = _days("grafana", "dev", date(2024, 2, 1), NOW.date(), (48, 12), (96, 48))
    # prometheus (not on main; the catalog says sre): 24 x 0.031611 = 0.758664, Mar 1..14.
    prometheus = _days(
        "prometheus", "prod", date(2024, 3, 1), date(2024, 3, 14), (24, 18), (0, None)
    )
    # Pods without the app label, on staging whose price sheet on main says 1 a core-hour.
    unattributed = _days("", "staging", date(2024, 3, 14), date(2024, 3, 14), (2, None), (0, None))
    return grafana + prometheus + unattributed


@pytest.fixture(scope="module")
def cost_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    require_tool("kubectl")
    root: Path = tmp_path_factory.mktemp("cost-pages")
    settings = Settings(
        data_dir=root / "var",
        database_url=None,
        catalog_paths=[str(REPO / "catalog")],
        secret_key="test-secret-key",
        gitops_seed_dir=REPO / "gitops-repo",
        templates_dir=REPO / "templates",
        error_budget_dir=REPO / "sre" / "error-budgets",
        run_worker=False,
        checkov_path=CHECKOV_PATH,
        auth_mode=AuthMode.TRUSTED_HEADER,
    )
    initialise(settings, gitops=True)
    with TestClient(create_app(settings)) as client:
        repo: GitOpsRepo = client.app.state.slo.gitops()  # type: ignore[attr-defined]
        ok = b"resources: [../../base]\n"
        files = _service(
            "payments", {"app.yaml": _deployment("payments", 2, "500m", "1Gi")}, {"dev": ok}
        )
        files |= _service(
            "grafana",
            {"app.yaml": _deployment("grafana", 1, "250m", "512Mi"), "hpa.yaml": HPA},
            {"dev": ok},
        )
        files |= _service(
            "tempo", {"app.yaml": _deployment("tempo", 1, "100m", "128Mi")}, {"dev": ok}
        )
        files["cost/prices/staging.yaml"] = b"cpu_core_hour: 1\n"
        repo.create_branch("scaffold/three", files, "Add three services", AUTHOR)
        repo.merge("scaffold/three", "Merge", AUTHOR)
        runtime(client).clock = lambda: NOW
        runtime(client).clear()
        yield client


def runtime(client: TestClient) -> CostRuntime:
    found: CostRuntime = client.app.state.cost  # type: ignore[attr-defined]
    return found


@pytest.fixture
def client(cost_app: TestClient) -> TestClient:
    """The module's app measured by a working Prometheus (tests may swap the sources)."""
    measure(cost_app, FakeCostSource(measured_days()))
    return cost_app


def measure(client: TestClient, *sources: CostSource) -> None:
    runtime(client).sources = list(sources)
    runtime(client).clear_measured()
    runtime(client).refresh_now()  # measured before the test's first request


def api(client: TestClient, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/cost{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_service(body: dict[str, Any]) -> dict[str, Any]:
    return {row["service"]: row for row in body["services"]}


def test_measured_figures_per_service_to_the_cent(client: TestClient) -> None:
    rows = by_service(api(client))
    grafana = rows["grafana"]
    # 15 days x 1.92408 = 28.8612; projected 31 days x 1.92408 = 59.64648.
    assert grafana["month_to_date"] == {
        "amount": "28.86",
        "currency": "USD",
        "source": "Prometheus",
    }
    assert grafana["projected"]["amount"] == "59.65"
    # Feb 14..Mar 14 (30 days) against Jan 15..Feb 13 (13 days of data): +130.77 %.
    assert grafana["change"] == {"percent": "130.8", "source": "Prometheus"}
    assert grafana["efficiency"] == {"cpu": "25.0", "memory": "50.0", "source": "Prometheus"}
    assert (
        grafana["trend"]["days"][0] == "2024-02-14" and grafana["trend"]["days"][-1] == "2024-03-14"
    )
    assert grafana["trend"]["amounts"] == ["1.92"] * 30
    assert grafana["figure"]["monthly"] == "21.95"  # the manifest estimate beside it
    # Measured, not on main: 14 x 0.758664 = 10.621296; 31 days = 23.518584.
    prometheus = rows["prometheus"]
    assert (prometheus["team"], prometheus["month_to_date"]["amount"]) == ("sre", "10.62")
    assert (prometheus["on_main"], grafana["on_main"]) == (False, True)
    assert prometheus["projected"]["amount"] == "23.52"
    assert prometheus["change"]["percent"] is None  # no previous window: no fake percentage
    # Unattributed: 2 core-hours at staging's 1 a core-hour; 2 + 2 x 17 days left.
    assert rows[""]["month_to_date"]["amount"] == "2.00" and rows[""]["team"] is None
    assert rows[""]["projected"]["amount"] == "36.00"
    # Not measured: the estimate pro rata. payments 0.040085/h x 24 x 15 = 14.4306.
    payments = rows["payments"]
    assert payments["month_to_date"] == {"amount": "14.43", "currency": "USD", "source": "estimate"}
    assert payments["projected"] == {"amount": "29.82", "currency": "USD", "source": "estimate"}
    assert payments["trend"]["days"] == [] and payments["change"]["percent"] is None
    assert payments["efficiency"] == {"cpu": None, "memory": None, "source": None}


def test_team_rows_sum_their_services_with_every_source(client: TestClient) -> None:
    teams = {row["team"]: row for row in api(client)["teams"]}
    sre = teams["sre"]
    assert sre["services"] == ["grafana", "prometheus", "tempo"]
    # 28.8612 + 10.621296 + tempo's estimate 0.003690725/h x 360 h = 40.811157.
    assert sre["month_to_date"]["amount"] == "40.81"
    assert sre["month_to_date"]["source"] == "Prometheus + estimate"
    assert sre["projected"]["amount"] == "85.91"  # 59.64648 + 23.518584 + 2.7458994
    # (30 x 1.92408 + 14 x 0.758664) against 13 x 1.92408: +173.23 %.
    assert sre["change"]["percent"] == "173.2"
    # CPU: (12 x 30 + 18 x 14) / (48 x 30 + 24 x 14) = 612 / 1776, weighted by hours.
    assert sre["efficiency"]["cpu"] == "34.5"
    assert sre["trend"]["amounts"][-1] == "2.68" and sre["trend"]["amounts"][0] == "1.92"
    assert teams[None]["services"] == ["payments", ""]


def test_sort_and_filter_like_the_catalog(client: TestClient) -> None:
    def order(query: str) -> list[str]:
        return [row["service"] for row in api(client, query)["services"]]

    assert order("") == ["grafana", "payments", "prometheus", "tempo", ""]
    assert order("?sort=cost") == ["grafana", "", "payments", "prometheus", "tempo"]
    assert order("?sort=cost&desc=true") == ["tempo", "prometheus", "payments", "", "grafana"]
    assert order("?sort=change") == ["grafana", "payments", "prometheus", "tempo", ""]
    assert order("?sort=efficiency") == ["grafana", "prometheus", "payments", "tempo", ""]
    assert order("?sort=efficiency&desc=1") == ["prometheus", "grafana", "payments", "tempo", ""]
    assert order("?team=sre") == ["grafana", "prometheus", "tempo"]
    assert order("?team=%28no+owner%29") == ["payments", ""]
    assert order("?q=GRAF") == ["grafana"]
    assert order("?q=sre+prom") == ["prometheus"]
    assert order("?q=unattributed") == [""]
    assert order("?service=payments") == ["payments"]
    body = api(client, "?q=graf")
    assert [row["team"] for row in body["teams"]] == ["sre"]
    assert body["teams"][0]["month_to_date"]["amount"] == "40.81"  # all of sre, not a search
    assert api(client, "?window=7d")["services"][0]["change"]["percent"] == "0.0"


def test_the_page_shows_figures_sources_sparklines_and_keeps_the_query(client: TestClient) -> None:
    response = client.get("/cost?team=sre&sort=cost&window=14d", headers=ADA)
    assert response.status_code == 200
    html = response.text
    row = re.search(r'<tr data-service="grafana">.*?</tr>', html, re.S)
    assert row is not None
    assert "28.86 USD" in row[0] and "59.65 USD" in row[0] and 'data-source="Prometheus"' in row[0]
    assert 'data-cost-chart="service-0"' in row[0]
    tempo = re.search(r'<tr data-service="tempo">.*?</tr>', html, re.S)
    assert tempo is not None and 'data-source="estimate"' in tempo[0] and "1.33 USD" in tempo[0]
    assert 'data-service="payments"' not in html
    charts = re.search(r'<script type="application/json" id="cost-chart-data">(.*?)</script>', html)
    assert charts is not None
    data = json.loads(charts[1])["charts"]
    assert len(data["service-0"]["amounts"]) == 14 and "service-2" not in data  # tempo: none
    assert '<script src="/static/cost-charts.js"' in html and "cdn" not in html.lower()
    # The sort links keep the filters; the form keeps them too.
    assert 'href="/cost?team=sre&amp;window=14d&amp;sort=change"' in html
    assert '<option value="14d" selected>' in html and '<option value="sre" selected>' in html
    assert client.get("/static/cost-charts.js").status_code == 200


def test_live_filtering_returns_only_the_results(client: TestClient) -> None:
    fragment = client.get("/cost?q=prom", headers=HTMX).text
    assert fragment.lstrip().startswith('<section id="results"')
    assert 'data-service="prometheus"' in fragment and 'data-service="grafana"' not in fragment
    assert 'id="cost-chart-data"' in fragment and "<html" not in fragment


def test_a_failing_source_is_shown_and_the_estimate_stands_in(cost_app: TestClient) -> None:
    url = "http://token:s3cret@opencost.test:9003"
    down = CostSourceError(f"{url}/allocation: connection refused")
    measure(cost_app, FakeCostSource(name="OpenCost", url=url, error=down))
    response = cost_app.get("/cost", headers=ADA)
    assert response.status_code == 200
    assert "connection refused" in response.text and "opencost.test:9003" in response.text
    assert "s3cret" not in response.text and "s3cret" not in cost_app.get("/api/cost").text
    body = api(cost_app)
    grafana = by_service(body)["grafana"]
    # The estimate pro rata: 0.03006375/h x 24 x 15 = 10.82295; x 24 x 31 = 22.36743.
    assert grafana["month_to_date"] == {"amount": "10.82", "currency": "USD", "source": "estimate"}
    assert grafana["projected"]["amount"] == "22.37" and grafana["change"]["percent"] is None
    assert "prometheus" not in by_service(body)  # known only from the failed source
    assert "connection refused" in body["sources"][0]["error"]
    # Behind it, Prometheus answers: its figures are used and OpenCost's error still shown.
    measure(
        cost_app,
        FakeCostSource(name="OpenCost", error=down),
        FakeCostSource(measured_days()),
    )
    body = api(cost_app)
    assert by_service(body)["grafana"]["month_to_date"]["source"] == "Prometheus"
    assert [s["error"] is None for s in body["sources"]] == [False, True]


def test_an_empty_source_leaves_estimates(cost_app: TestClient) -> None:
    measure(cost_app, FakeCostSource())
    body = api(cost_app)
    assert {row["month_to_date"]["source"] for row in body["services"]} == {"estimate"}
    assert body["sources"] == [
        {"name": "Prometheus", "url": "http://fake-cost-source", "days": 0, "error": None}
    ]
    assert "0 workload-days" in cost_app.get("/cost", headers=ADA).text


def test_windows_and_sorts_outside_the_offer_are_refused(client: TestClient) -> None:
    refused = client.get("/api/cost?window=5d")
    assert refused.status_code == 422 and "query.window" in refused.json()["errors"]
    page = client.get("/cost?window=5d", headers=HTML)
    assert page.status_code == 422 and "window: must be one of 7d, 14d, 30d, 90d" in page.text
    assert client.get("/cost?sort=size", headers=HTML).status_code == 422
    assert client.get("/cost/teams/sre?window=1y", headers=HTML).status_code == 422


def test_the_team_page_sums_per_environment(client: TestClient) -> None:
    response = client.get("/cost/teams/sre", headers=ADA)
    assert response.status_code == 200
    html = response.text
    figures = re.search(r'<dl class="facts" id="team-figures">.*?</dl>', html, re.S)
    assert figures is not None and "40.81 USD" in figures[0] and "85.91 USD" in figures[0]
    dev = re.search(r'<tr data-environment="dev">.*?</tr>', html, re.S)
    prod = re.search(r'<tr data-environment="prod">.*?</tr>', html, re.S)
    assert dev is not None and prod is not None
    # dev: grafana measured 28.8612 + tempo's estimate 1.328661; estimates 21.95 + 2.69.
    assert "30.19 USD" in dev[0] and "24.64 USD" in dev[0]
    assert "10.62 USD" in prod[0] and 'data-source="Prometheus"' in prod[0]
    charts = re.search(r'id="cost-chart-data">(.*?)</script>', html)
    assert charts is not None and len(json.loads(charts[1])["charts"]["team"]["days"]) == 30
    missing = client.get("/cost/teams/nobody", headers=HTML)
    assert missing.status_code == 404 and "team nobody" in missing.text


@pytest.mark.parametrize("services", [3, 300])
def test_source_calls_stay_fixed_whatever_the_number_of_services(
    cost_app: TestClient, services: int
) -> None:
    days = [
        day
        for n in range(services)
        for day in _days(f"svc-{n}", "dev", date(2024, 3, 1), date(2024, 3, 14), (24, 6), (8, 4))
    ]
    source = FakeCostSource(days)
    measure(cost_app, source)
    for path in ("/cost", "/cost?sort=cost", "/api/cost?window=7d", "/api/cost?window=14d"):
        assert cost_app.get(path, headers=ADA).status_code == 200
    assert cost_app.get("/cost/teams/sre", headers=ADA).status_code == 200
    assert len(by_service(api(cost_app))) == services + 3
    assert len(source.asked) == 1


def test_price_sheets_are_read_from_main(cost_app: TestClient) -> None:
    sheets = price_sheets_on_main(cost_app.app.state.slo.gitops)  # type: ignore[attr-defined]
    assert set(sheets) == {"staging"} and sheets["staging"].cpu_core_hour == D(1)
