"""``/cost/{service}`` and ``GET /api/cost/{service}`` over a real GitOps repo and kustomize.

The cost runtime is a fake (measured days and usage metrics given by the test); the GitOps
repository, the manifests built by kustomize, the catalog and the SLO index are real.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.cost.estimate import CostIndex, EnvironmentCost, ServiceCost
from portal.cost.measured import DayCost, Measured, SourceStatus
from portal.cost.model import DEFAULT_PRICES, Prices, PriceSheetError
from portal.cost.rightsizing import MIB
from portal.cost.runtime import CostRuntime
from portal.cost.service_routes import ServiceCostRuntime
from portal.cost.tokens import LLM_PRICES_PATH
from portal.integrations.cost_metrics import (
    ContainerUsage,
    CostSourceError,
    FakeUsageMetrics,
    TokenCount,
    UsageMetrics,
    Workload,
)
from tests.conftest import ALAN, GRACE, REPO
from tests.proposals.seed import OWNER, SERVICE, push_to_main, seed_service

TODAY = date(2024, 5, 31)
PROD = Workload("prod", "air-quality-prod", SERVICE)
DEV = Workload("dev", "air-quality-dev", SERVICE)
HTML = {"Accept": "text/html"}
GIB_HOURS_DAY = Decimal(24)


@dataclass
class FakeServiceCostRuntime:
    """A fake of the app's cost runtime: the estimate, measured days and usage metrics given."""

    estimate: CostIndex = field(default_factory=CostIndex)
    days: list[DayCost] = field(default_factory=list)
    usage_metrics: UsageMetrics | None = None
    source: str = "Prometheus"
    source_error: str | None = None
    prices_error: str | None = None
    today_is: date = TODAY

    def index(self) -> CostIndex:
        return self.estimate

    def measured(self, window_days: int = 30) -> Measured:
        statuses = (SourceStatus(self.source, "http://fake", len(self.days), self.source_error),)
        by_service = {}
        if self.days and self.source_error is None:
            by_service = {SERVICE: (self.source, tuple(self.days))}
        return Measured(TODAY - timedelta(days=60), TODAY, statuses, by_service)

    def prices(self, environment: str) -> Prices:
        if self.prices_error:
            raise PriceSheetError(self.prices_error)
        return DEFAULT_PRICES

    def today(self) -> date:
        return self.today_is


def measured_day(workload: Workload, when: date) -> DayCost:
    # One core and 1 GiB held all day at OpenCost's default prices:
    # 24 x 0.031611 = 0.758664 CPU, 24 x 0.004237 = 0.101688 memory.
    return DayCost(
        workload=workload,
        day=when,
        cpu=Decimal("0.758664"),
        memory=Decimal("0.101688"),
        gpu=Decimal(0),
        pv=Decimal(0),
        total=Decimal("0.860352"),
        cpu_efficiency=Decimal("0.25"),
        memory_efficiency=Decimal("0.5"),
        cpu_request_core_hours=Decimal(24),
        cpu_usage_core_hours=Decimal(6),
        memory_request_gib_hours=GIB_HOURS_DAY,
        memory_usage_gib_hours=Decimal(12),
    )


def usage_of(
    workload: Workload, cpu_millicores: int, memory_mib: int, container: str = "app"
) -> ContainerUsage:
    return ContainerUsage(
        workload,
        container,
        None,
        Decimal(cpu_millicores) / 1000,
        None,
        Decimal(memory_mib) * MIB,
    )


REQUESTS = 'http_requests_total{job="air-quality"}'


def metrics() -> FakeUsageMetrics:
    return FakeUsageMetrics(
        containers=[usage_of(PROD, 58, 150), usage_of(DEV, 240, 250)],
        tokens=[
            TokenCount(PROD, "gpt-4o-mini", "input", Decimal(2_000_000)),
            TokenCount(PROD, "mystery-7b", "output", Decimal(1_000)),
            TokenCount(Workload("prod", "other", "other"), "gpt-4o-mini", "input", Decimal(9)),
        ],
        increases={REQUESTS: Decimal(4_000_000)},
    )


def estimate() -> CostIndex:
    envs = (EnvironmentCost("prod", monthly=Decimal("58.96"), cpu=Decimal("34.62")),)
    return CostIndex((ServiceCost(SERVICE, f"group:default/{OWNER}", envs),))


def fake_runtime(portal: TestClient, **given: object) -> FakeServiceCostRuntime:
    days = [measured_day(PROD, TODAY - timedelta(days=n)) for n in range(1, 31)]
    fake = FakeServiceCostRuntime(estimate(), days, metrics())
    for name, value in given.items():
        setattr(fake, name, value)
    portal.app.state.cost = fake  # type: ignore[attr-defined]
    return fake


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module (SQLite): the test service and an LLM price table on main.

    Pages only read, and each test sets its own fake cost runtime: sharing the slow part
    (GitOps bootstrap, push, catalog import) keeps every test fast.
    """
    base = tmp_path_factory.mktemp("cost-pages")
    settings = Settings(
        data_dir=base / "var",
        catalog_paths=[str(REPO / "catalog")],
        secret_key="test-secret-key",
        gitops_seed_dir=REPO / "gitops-repo",
        templates_dir=REPO / "templates",
        error_budget_dir=REPO / "sre" / "error-budgets",
        run_worker=False,
        auth_mode=AuthMode.TRUSTED_HEADER,
    )
    initialise(settings, gitops=True)
    with TestClient(create_app(settings)) as client:
        work = base / "someone"
        seed_service(client, settings, work)
        table = (
            "models:\n  gpt-4o-mini:\n"
            "    input_per_million: '0.15'\n    output_per_million: '0.6'\n"
        )
        push_to_main(settings, work, {LLM_PRICES_PATH: table}, "LLM prices")
        yield client


def test_the_page_shows_breakdown_unit_cost_tokens_and_advice(portal: TestClient) -> None:
    fake_runtime(portal)
    response = portal.get(f"/cost/{SERVICE}", headers={**GRACE, **HTML})
    assert response.status_code == 200, response.text
    page = response.text
    # 30 days x 0.860352 = 25.81056: CPU 22.75992, memory 3.05064.
    assert "measured by Prometheus" in page
    assert "<strong>25.81 USD</strong>" in page
    assert "22.76" in page and "3.05" in page
    # Unit cost: 25.81056 / 4 million requests = 6.45264 per million.
    assert re.search(r"<strong data-unit-cost>6\.45 USD</strong>", page)
    assert "requests-availability" in page
    # Tokens: 2M x 0.15 = 0.30; the unknown model is named, never priced at 0.
    assert "<strong data-token-total>0.30 USD</strong>" in page
    assert "no price for model mystery-7b" in page
    # Right-sizing prod: 500m -> 70m, 1024Mi -> 180Mi, 3 replicas: 37.42 USD a month.
    assert "500m → 70m" in page and "1024Mi → 180Mi" in page
    assert "<strong>37.42 USD</strong>" in page
    assert page.count("Propose this change") == 1  # dev (240m of 250m) is already lean
    assert 'action="/cost/air-quality/right-size"' in page
    assert 'name="csrf_token"' in page
    assert 'id="cost-chart-data"' in page and "/static/cost-service.js" in page


def test_only_people_who_may_propose_see_the_button(portal: TestClient) -> None:
    fake_runtime(portal)
    page = portal.get(f"/cost/{SERVICE}", headers={**ALAN, **HTML}).text
    assert "Propose this change" not in page
    assert "members of group:default/platform-team can propose it" in page


def test_the_api_gives_amounts_as_strings_of_cents(portal: TestClient) -> None:
    fake_runtime(portal)
    response = portal.get(f"/api/cost/{SERVICE}?window=7d", headers=GRACE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["window"] == "7d"
    assert (body["first"], body["last"]) == ("2024-05-24", "2024-05-30")
    assert body["measured"]["total"]["total"] == "6.02"  # 7 x 0.860352 = 6.022464
    assert body["estimate"]["rows"][0]["total"] == "58.96"
    assert body["estimate"]["source"] == "estimate from manifests on main"
    prod = next(r for r in body["recommendations"] if r["environment"] == "prod")
    assert prod["proposed"] is True and prod["monthly_saving"] == "37.42"
    assert prod["replicas"] == 3 and prod["replicas_note"] == "HPA minimum 3"
    assert body["tokens"]["totals"] == {"USD": "0.30"}, body["tokens"]
    assert body["unit_cost"]["slo"] == "requests-availability"


def test_an_unknown_service_is_a_404_page(portal: TestClient) -> None:
    fake_runtime(portal)
    page = portal.get("/cost/nobody", headers={**GRACE, **HTML})
    assert page.status_code == 404
    assert "no service nobody" in page.text and "<html" in page.text
    api = portal.get("/api/cost/nobody", headers=GRACE)
    assert api.status_code == 404 and "no service nobody" in api.json()["detail"]
    assert portal.get("/api/cost/Not_A_Name", headers=GRACE).status_code == 404
    assert portal.get(f"/api/cost/{SERVICE}?window=5y", headers=GRACE).status_code == 422


def test_a_measured_service_not_on_main_still_has_its_page(portal: TestClient) -> None:
    fake_runtime(portal, estimate=CostIndex())
    body = portal.get(f"/api/cost/{SERVICE}", headers=GRACE).json()
    assert body["measured"]["total"]["total"] == "25.81"
    assert body["estimate"]["kind"] == "none"


def test_sources_that_are_down_are_shown_never_a_500(portal: TestClient) -> None:
    down = FakeUsageMetrics(error=CostSourceError("http://prometheus: connection refused"))
    fake_runtime(portal, usage_metrics=down, source_error="timed out after 5 s")
    response = portal.get(f"/cost/{SERVICE}", headers={**GRACE, **HTML})
    assert response.status_code == 200
    page = response.text
    assert "Prometheus (http://fake): timed out after 5 s" in page
    assert "Not measured" in page and "<strong>58.96 USD</strong>" in page  # the estimate
    assert "No unit cost: no measured cost in this window." in page
    assert "usage metrics (http://fake-usage-metrics): http://prometheus: connection" in page
    assert "Propose this change" not in page


def test_no_usage_metrics_and_broken_prices_are_said(portal: TestClient) -> None:
    fake_runtime(portal, usage_metrics=None)
    body = portal.get(f"/api/cost/{SERVICE}", headers=GRACE).json()
    assert "PORTAL_PROMETHEUS_URL" in body["rightsizing_reason"]
    assert "PORTAL_PROMETHEUS_URL" in body["tokens"]["reason"]
    assert "PORTAL_PROMETHEUS_URL" in body["unit_cost"]["reason"]
    fake_runtime(portal, prices_error="cost/prices/prod.yaml:2: cpu_core_hour: must be a number")
    body = portal.get(f"/api/cost/{SERVICE}", headers=GRACE).json()
    assert "prod: cost/prices/prod.yaml:2: cpu_core_hour: must be a number" in body["problems"]
    assert all(not row["proposed"] for row in body["recommendations"])


def test_the_apps_own_runtime_serves_the_page(portal: TestClient) -> None:
    """The real cost runtime (estimate built with kustomize, no measured source)."""
    changes = portal.app.state.changes  # type: ignore[attr-defined]
    engine = portal.app.state.engine  # type: ignore[attr-defined]
    real = CostRuntime(changes.request_gitops, engine, usage_metrics=metrics())
    assert isinstance(real, ServiceCostRuntime)
    portal.app.state.cost = real  # type: ignore[attr-defined]
    body = portal.get(f"/api/cost/{SERVICE}", headers=GRACE).json()
    assert body["measured"]["kind"] == "none"
    # prod: 3 x (500m, 1Gi) x 730 h = 1095 core-hours x 0.031611 + 2190 GiB-hours x 0.004237
    # = 34.614045 + 9.27903 = 43.893075; dev: 1 x (250m, 256Mi) = 5.7690075 + 0.7732525.
    rows = {row["environment"]: row["total"] for row in body["estimate"]["rows"]}
    assert rows == {"dev": "6.54", "prod": "43.89"}
    prod = next(r for r in body["recommendations"] if r["environment"] == "prod")
    assert prod["monthly_saving"] == "37.42"
    assert body["unit_cost"]["reason"] == "no measured cost in this window"


def test_an_overlay_that_does_not_build_and_a_bad_price_table_are_shown(
    portal: TestClient,
) -> None:
    """Last in the module: it leaves a broken service and a broken LLM price table on main."""
    settings: Settings = portal.app.state.settings  # type: ignore[attr-defined]
    broken = "kind: Kustomization\nresources:\n  - gone.yaml\n"
    files = {
        "services/broken/deploy/overlays/prod/kustomization.yaml": broken,
        LLM_PRICES_PATH: "models:\n  gpt-4o-mini:\n    input_per_million: free\n",
    }
    push_to_main(settings, settings.data_dir.parent / "someone", files, "Break")
    fake = fake_runtime(portal)
    fake.estimate = CostIndex(
        (*estimate().services, ServiceCost("broken", None, (EnvironmentCost("prod"),)))
    )
    body = portal.get("/api/cost/broken", headers=GRACE).json()
    built = [
        p for p in body["problems"] if p.startswith("prod: deploy/overlays/prod does not build")
    ]
    assert built, body["problems"]
    assert body["recommendations"] == []
    page = portal.get("/cost/broken", headers={**GRACE, **HTML})
    assert page.status_code == 200 and "does not build" in page.text
    tokens = portal.get(f"/api/cost/{SERVICE}", headers=GRACE).json()["tokens"]
    assert tokens["reason"] == (
        "the LLM price table cannot be used: cost/llm-prices.yaml:3: "
        "models.gpt-4o-mini.input_per_million: must be a number, not 'free'"
    )
