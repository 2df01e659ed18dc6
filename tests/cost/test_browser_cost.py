"""The cost pages in Chromium: the overview, a service page, and one click to a reviewed change.

A live portal whose GitOps main holds the ``air-quality`` test service (owned by
platform-team) and whose cost runtime is the real ``CostRuntime`` over a ``FakeCostSource``
(30 measured days in May 2024 for ``air-quality`` and for ``checkout``, a service measured
but not on main) and ``FakeUsageMetrics`` (the p95 usage behind the recommendation), at a
fixed clock. Every amount asserted is computed by hand from those days at OpenCost's
default prices (no price sheet on main).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from portal.app import create_app
from portal.changes.runtime import ChangesRuntime
from portal.cost.model import DEFAULT_PRICES, cents
from portal.cost.rightsizing import MIB
from portal.cost.runtime import CostRuntime
from portal.integrations.cost_metrics import (
    ContainerUsage,
    FakeCostSource,
    FakeUsageMetrics,
    ResourceDay,
    Workload,
)
from tests.browser_server import initialised_settings, live_server, sign_in
from tests.proposals.seed import SERVICE, seed_service

pytestmark = pytest.mark.browser

NOW = datetime(2024, 5, 31, 12, tzinfo=UTC)  # today is the 31st: the 1st-30th are complete
MAY = [date(2024, 5, 1) + timedelta(days=n) for n in range(30)]
PROD = Workload("prod", "air-quality-prod", SERVICE)
CHECKOUT = Workload("prod", "shop", "checkout")

# air-quality: 1 core and 1 GiB requested all day, 0.25 core and 0.5 GiB used: the request
# is held. A day: 24 x 0.031611 = 0.758664 CPU + 24 x 0.004237 = 0.101688 memory.
# May to date (30 days): CPU 22.75992, memory 3.05064, total 25.81056 -> 25.81.
# Projected: 25.81056 + 1 day left (the 31st) x 0.860352 (the last 7 days' rate) = 26.670912.
MONTH_TO_DATE = "25.81"
PROJECTED = "26.67"
# checkout: 2 cores held, no memory: 48 x 0.031611 = 1.517328 a day; May: 45.51984.
CHECKOUT_MONTH_TO_DATE = "45.52"
# Right-sizing prod (main: 3 replicas of app at 500m / 1024Mi; p95 58m and 150Mi):
# 58m x 1.2 -> 70m, 150Mi x 1.2 -> 180Mi. Saving per month, 3 replicas x 730 h:
# 0.43 cores x 2190 x 0.031611 + 844/1024 GiB x 2190 x 0.004237 = 37.4160... -> 37.42.
SAVING = "37.42"
TITLE = f"Right-size {SERVICE} in prod: save {SAVING} USD/month"


def day_of(workload: Workload, when: date, cores: int, gib: int, used: Decimal) -> ResourceDay:
    """``cores`` and ``gib`` requested (and held) for 24 hours; ``used`` of each used."""
    hours = Decimal(24)
    return ResourceDay(
        workload=workload,
        day=when,
        hours=hours,
        cpu_request_core_hours=cores * hours,
        cpu_usage_core_hours=cores * hours * used,
        cpu_held_core_hours=cores * hours,
        memory_request_gib_hours=gib * hours,
        memory_usage_gib_hours=gib * hours * used * 2,
        memory_held_gib_hours=gib * hours,
    )


def cost_runtime(app: FastAPI) -> CostRuntime:
    """The app's real cost runtime, measuring with fakes at the fixed clock."""
    days = [day_of(PROD, day, 1, 1, Decimal("0.25")) for day in MAY]
    days += [day_of(CHECKOUT, day, 2, 0, Decimal("0.25")) for day in MAY]
    usage = ContainerUsage(PROD, "app", None, Decimal("0.058"), None, Decimal(150) * MIB)
    changes: ChangesRuntime = app.state.changes
    runtime = CostRuntime(
        changes.request_gitops,
        app.state.engine,
        prometheus=FakeCostSource(days),
        usage_metrics=FakeUsageMetrics(containers=[usage]),
        clock=lambda: NOW,
    )
    runtime.refresh_now()  # measured before the first page (it would otherwise be loading)
    return runtime


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal with air-quality on main and measured days (see the module).

    The served app's cost runtime is fed by the fakes (the sources are not settings).
    """
    folder = tmp_path_factory.mktemp("browser-cost")
    settings = initialised_settings(folder, "browser-cost-secret", gitops=True)
    # The service is pushed to main and imported into the catalog before serving.
    with TestClient(create_app(settings)) as client:
        seed_service(client, settings, folder / "someone")
    app = create_app(settings)
    app.state.cost = cost_runtime(app)
    with live_server(settings, app) as url:
        yield url


def test_the_overview_shows_measured_figures_trends_and_filters_live(page: Page) -> None:
    page.goto("/cost")
    air = page.locator(f'#cost-services tr[data-service="{SERVICE}"]')
    checkout = page.locator('#cost-services tr[data-service="checkout"]')
    expect(air.locator('td[data-label="Month to date"]')).to_have_text(
        f"{MONTH_TO_DATE} USD Prometheus"
    )
    expect(air.locator('td[data-label="Projected month"]')).to_have_text(
        f"{PROJECTED} USD Prometheus"
    )
    expect(air.locator("td[data-label=Team]")).to_have_text("platform-team")
    expect(air.locator("[data-efficiency-cpu]")).to_have_text("CPU 25.0 %")
    expect(checkout.locator('td[data-label="Month to date"]')).to_contain_text(
        f"{CHECKOUT_MONTH_TO_DATE} USD"
    )
    # uPlot drew the 30-day sparkline: a canvas inside the row's chart.
    expect(air.locator("[data-cost-chart] canvas")).to_have_count(1)
    page.evaluate("window.portalNotReloaded = true")

    with page.expect_request(lambda request: "q=air" in request.url, timeout=5_000):
        page.get_by_role("searchbox").fill("air")  # htmx swaps #results in place
    expect(checkout).to_have_count(0)
    expect(page.locator("#result-count")).to_have_text("1 service matching “air”")
    expect(air.locator("[data-cost-chart] canvas")).to_have_count(1)  # redrawn after the swap
    assert page.evaluate("window.portalNotReloaded") is True, "the page reloaded"
    expect(page).to_have_url(re.compile(r"/cost\?.*q=air"))


def test_the_service_page_leads_to_a_reviewed_right_sizing_change(page: Page) -> None:
    sign_in(page, "grace.hopper", f"/cost/{SERVICE}")
    prod = page.locator('#cost-breakdown tr[data-environment="prod"]')
    expect(prod.locator("td[data-label=CPU]")).to_have_text("22.76")
    expect(prod.locator("td[data-label=Memory]")).to_have_text("3.05")
    expect(prod.locator("td[data-label=Total]")).to_have_text(f"{MONTH_TO_DATE} USD")
    # Request vs usage: both charts drawn by uPlot, each with its two lines in the legend.
    for chart in ("cost-cpu", "cost-memory"):
        drawn = page.locator(f'[data-cost-chart="{chart}"]')
        expect(drawn.locator("canvas")).to_have_count(1)
        expect(drawn.locator(".u-legend")).to_contain_text("requested")
        expect(drawn.locator(".u-legend")).to_contain_text("used")
    advice = page.locator('#cost-recommendations tr[data-environment="prod"]')
    expect(advice.locator("[data-resource=cpu] strong")).to_have_text("500m → 70m")
    expect(advice.locator("[data-resource=memory] strong")).to_have_text("1024Mi → 180Mi")
    expect(advice.locator('td[data-label="Saving / month"]')).to_have_text(f"{SAVING} USD")

    advice.get_by_role("button", name="Propose this change").click()
    expect(page).to_have_url(re.compile(r"/reviews/[0-9a-f]{16}$"))
    change_path = page.url.removeprefix(page.url.split("/reviews/")[0])
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    page.goto("/reviews")
    listed = page.get_by_role("link", name=TITLE)
    expect(listed).to_have_count(1)
    expect(listed).to_have_attribute("href", change_path)


def test_the_hand_computed_figures_follow_from_the_prices() -> None:
    day = 24 * DEFAULT_PRICES.cpu_core_hour + 24 * DEFAULT_PRICES.memory_gib_hour
    assert str(cents(30 * day)) == MONTH_TO_DATE
    assert str(cents(31 * day)) == PROJECTED  # 30 complete days + today at the same rate
    assert str(cents(30 * 48 * DEFAULT_PRICES.cpu_core_hour)) == CHECKOUT_MONTH_TO_DATE
    replica_hours = 3 * 730
    saving = (Decimal("0.43") * DEFAULT_PRICES.cpu_core_hour) + (
        Decimal(844) / 1024 * DEFAULT_PRICES.memory_gib_hour
    )
    assert str(cents(saving * replica_hours)) == SAVING
