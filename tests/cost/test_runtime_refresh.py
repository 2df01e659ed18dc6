"""The measured-cost refresh runs behind the pages: no request waits for a source.

``FakeGatedCostSource`` answers only once the test opens its gate, so a test looks at the
pages while a refresh is stuck in the source: the first load, the refresh of a stale
snapshot, a refresh that fails. The runtime's clock is fixed (2024-03-15 12:00 UTC) and
moved by the tests; the estimate of main is one service, ``cart``, at 73 a month.
Amounts: a day of 24 core-hours at OpenCost's 0.031611 is 0.758664.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.config import AuthMode, Settings
from portal.cost.estimate import CostIndex, EnvironmentCost, ServiceCost
from portal.cost.runtime import CostRuntime
from portal.integrations.cost_metrics import (
    ContainerUsage,
    CostSourceError,
    FakeCostSource,
    FakeUsageMetrics,
    ResourceDay,
    Workload,
)
from portal.slo.runtime import Cached
from tests.conftest import ADA, CHECKOV_PATH, REPO

D = Decimal
NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
CART = Workload("prod", "shop", "cart")
ESTIMATE = CostIndex((ServiceCost("cart", None, (EnvironmentCost("prod", monthly=D(73)),)),))
GATE_SECONDS = 10.0  # a test that forgets to open the gate fails instead of hanging
HTML = {**ADA, "Accept": "text/html"}
LOADING = "measured figures are loading (started 12:00:00 UTC)"


@dataclass
class FakeGatedCostSource(FakeCostSource):
    """A ``FakeCostSource`` answering once ``gate`` is open; ``entered`` is set when asked.

    ``crash`` is raised as is: a source breaking its contract with an unexpected error.
    """

    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    crash: Exception | None = None

    def resource_days(self, first: date, last: date) -> list[ResourceDay]:
        """Wait for the gate, then answer as ``FakeCostSource`` (or raise ``crash``)."""
        self.entered.set()
        if not self.gate.wait(GATE_SECONDS):
            raise AssertionError("the test never opened the gate")
        if self.crash is not None:
            raise self.crash
        return super().resource_days(first, last)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def cart_day(when: date, core_hours: int = 24) -> ResourceDay:
    """``cart`` on ``when``: ``core_hours`` requested and held, nothing else."""
    hours = D(core_hours)
    return ResourceDay(CART, when, D(24), hours, None, hours, D(0), None, D(0))


def cart_days(first: date, last: date) -> list[ResourceDay]:
    return [cart_day(first + timedelta(days=n)) for n in range((last - first).days + 1)]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module; each test gives it its own cost runtime."""
    with TestClient(create_app(_settings(tmp_path_factory.mktemp("refresh")))) as client:
        yield client


def _settings(folder: Path) -> Settings:
    return Settings(
        data_dir=folder / "var",
        database_url=None,
        catalog_paths=[],
        secret_key="test-secret-key",
        gitops_seed_dir=REPO / "gitops-repo",
        templates_dir=REPO / "templates",
        run_worker=False,
        checkov_path=CHECKOV_PATH,
        auth_mode=AuthMode.TRUSTED_HEADER,
    )


@pytest.fixture
def source() -> FakeGatedCostSource:
    return FakeGatedCostSource(cart_days(date(2024, 1, 1), TODAY))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(app: TestClient, source: FakeGatedCostSource, clock: Clock) -> Iterator[CostRuntime]:
    """The app's cost runtime for one test: ``source``, ``clock``, the estimate of cart."""
    found = CostRuntime(None, app.app.state.engine, prometheus=source, clock=clock)  # type: ignore[attr-defined]
    found.cache = Cached(lambda: ESTIMATE, 60.0)
    app.app.state.cost = found  # type: ignore[attr-defined]
    yield found
    source.gate.set()
    found.stop()
    assert found.wait(GATE_SECONDS), "a refresh thread outlived its test"


def api(app: TestClient) -> dict[str, Any]:
    response = app.get("/api/cost", headers=ADA)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "cost-refresh" and t.is_alive()}


def cart(body: dict[str, Any]) -> dict[str, Any]:
    row = next(row for row in body["services"] if row["service"] == "cart")
    month_to_date: dict[str, Any] = row["month_to_date"]
    return month_to_date


def test_a_request_during_a_slow_first_load_returns_at_once_with_the_loading_note(
    app: TestClient, runtime: CostRuntime, source: FakeGatedCostSource
) -> None:
    before = refresh_threads()  # any other module's, ending
    # The gate is closed: a request that waited for the source would not come back.
    body = api(app)
    assert source.entered.wait(GATE_SECONDS)  # the refresh is inside the source meanwhile
    assert body["sources"] == [
        {"name": "Prometheus", "url": source.url, "days": 0, "error": LOADING}
    ]
    # 73 a month is 0.10 an hour: x 24 x 15 days, today included = 36.00.
    assert cart(body) == {"amount": "36.00", "currency": "USD", "source": "estimate"}
    page = app.get("/cost", headers=HTML)
    assert page.status_code == 200 and LOADING in page.text
    service = app.get("/api/cost/cart", headers=ADA).json()
    assert any(LOADING in problem for problem in service["problems"])
    assert service["measured"]["kind"] == "none"
    assert len(refresh_threads() - before) == 1  # three requests, one refresh
    source.gate.set()
    assert runtime.wait(GATE_SECONDS)
    # One refresh for the three requests; then the measured figures: 15 x 0.758664.
    assert source.asked == [(date(2024, 1, 15), TODAY)]
    assert cart(api(app)) == {"amount": "11.38", "currency": "USD", "source": "Prometheus"}


def test_a_stale_snapshot_is_served_while_the_next_one_loads(
    app: TestClient, runtime: CostRuntime, source: FakeGatedCostSource, clock: Clock
) -> None:
    source.gate.set()
    runtime.refresh_now()
    assert cart(api(app))["amount"] == "11.38"  # 15 days x 0.758664 = 11.37996
    source.gate.clear()
    source.entered.clear()
    source.days[-1] = cart_day(TODAY, 48)  # today doubles: +0.758664
    clock.now += timedelta(minutes=5, seconds=1)
    body = api(app)  # due: a refresh starts, stuck in the source, and this one is served
    assert source.entered.wait(GATE_SECONDS)
    assert cart(body)["amount"] == "11.38" and body["sources"][0]["error"] is None
    assert body["problems"] == []
    source.gate.set()
    assert runtime.wait(GATE_SECONDS)
    assert cart(api(app)) == {"amount": "12.14", "currency": "USD", "source": "Prometheus"}


def test_only_the_days_not_held_are_asked_after_the_first_load(
    runtime: CostRuntime, source: FakeGatedCostSource, clock: Clock
) -> None:
    source.gate.set()

    def refresh() -> None:
        runtime.expire()
        runtime.measured()
        assert runtime.wait(GATE_SECONDS)

    runtime.refresh_now()
    assert source.asked == [(date(2024, 1, 15), TODAY)]  # the whole history, once
    refresh()
    assert source.asked[1:] == [(date(2024, 3, 14), TODAY)]  # yesterday and today
    clock.now = datetime(2024, 3, 16, 0, 30, tzinfo=UTC)  # a new day
    source.days.append(cart_day(date(2024, 3, 16)))
    runtime.measured()
    assert runtime.wait(GATE_SECONDS)
    # The 14th was yesterday at the last refresh (samples may come late): asked again.
    assert source.asked[2:] == [(date(2024, 3, 14), date(2024, 3, 16))]
    refresh()
    assert source.asked[3:] == [(date(2024, 3, 15), date(2024, 3, 16))]
    # Held and new days together, each once: the 61 days from Jan 16.
    days = [d.day for d in runtime.service_days("cart")]
    assert days == [date(2024, 1, 16) + timedelta(days=n) for n in range(61)]
    # A 90-day window needs 180 days: only the older ones not held, and the two unsettled.
    # Until they are in, it shows no measured figures (61 of 180 days would be wrong ones).
    source.gate.clear()
    assert runtime.measured(90).service_days("cart") == []
    assert runtime.measured(30).service_days("cart")  # while the 30-day window has its own
    source.gate.set()
    assert runtime.wait(GATE_SECONDS)
    assert source.asked[4:] == [
        (date(2023, 9, 18), date(2024, 1, 15)),
        (date(2024, 3, 15), date(2024, 3, 16)),
    ]
    refresh()  # days the source had nothing for (before Jan 1) are held too
    assert source.asked[6:] == [(date(2024, 3, 15), date(2024, 3, 16))]
    assert len(runtime.measured(90).service_days("cart")) == 76  # Jan 1 .. Mar 16


def test_a_failing_refresh_keeps_the_last_figures_and_shows_the_error(
    app: TestClient, runtime: CostRuntime, source: FakeGatedCostSource, clock: Clock
) -> None:
    source.url = "http://user:s3cret@prometheus.test:9090"
    source.gate.set()
    runtime.refresh_now()
    source.error = CostSourceError(f"Prometheus at {source.url}: connection refused")
    clock.now += timedelta(minutes=5, seconds=1)
    api(app)
    assert runtime.wait(GATE_SECONDS)
    body = api(app)
    assert cart(body) == {"amount": "11.38", "currency": "USD", "source": "Prometheus"}
    assert body["sources"][0]["days"] == 61 and body["sources"][0]["error"] is None
    note = (
        "Prometheus (http://***@prometheus.test:9090): the refresh at 12:05:01 UTC failed,"
        " so its figures of 12:00:00 UTC are shown: Prometheus at"
        " http://***@prometheus.test:9090: connection refused"
    )
    assert body["problems"] == [note]
    page = app.get("/cost", headers=HTML).text
    assert note in page and "s3cret" not in page
    assert note in app.get("/api/cost/cart", headers=ADA).json()["problems"]
    # The source answers again: the note goes with the next refresh.
    source.error = None
    clock.now += timedelta(minutes=5, seconds=1)
    api(app)
    assert runtime.wait(GATE_SECONDS)
    assert api(app)["problems"] == []


def test_a_refresh_that_raises_keeps_the_snapshot_and_is_not_retried_at_once(
    app: TestClient, runtime: CostRuntime, source: FakeGatedCostSource, clock: Clock
) -> None:
    source.gate.set()
    source.crash = RuntimeError("the source broke its contract")
    api(app)
    assert runtime.wait(GATE_SECONDS)
    body = api(app)  # no snapshot yet: the source says why, the estimate stands in
    assert body["sources"][0]["error"] == (
        "the refresh at 12:00:00 UTC failed: the source broke its contract"
    )
    assert cart(body)["source"] == "estimate" and len(source.asked) == 0
    source.crash = None
    clock.now += timedelta(minutes=5)
    api(app)
    assert runtime.wait(GATE_SECONDS)
    body = api(app)
    assert cart(body)["source"] == "Prometheus" and body["problems"] == []
    source.crash = RuntimeError("boom")
    clock.now += timedelta(minutes=5)
    api(app)
    assert runtime.wait(GATE_SECONDS)
    body = api(app)
    assert cart(body)["source"] == "Prometheus"
    assert body["problems"] == [
        "measured figures: the refresh at 12:10:00 UTC failed, so those of 12:05:00 UTC"
        " are shown: boom"
    ]
    source.entered.clear()
    api(app)  # failed a moment ago: not asked again before five minutes
    assert runtime.wait(GATE_SECONDS) and not source.entered.is_set()


def test_a_refresh_begun_before_the_sources_changed_is_not_kept(
    runtime: CostRuntime, source: FakeGatedCostSource
) -> None:
    runtime.measured()  # a refresh starts and waits in the source
    assert source.entered.wait(GATE_SECONDS)
    other = FakeGatedCostSource([cart_day(TODAY, 48)])
    other.gate.set()
    runtime.sources = [other]
    runtime.clear_measured()
    source.gate.set()
    assert runtime.wait(GATE_SECONDS)
    # The refresh loaded again, from the new source: only its day is shown.
    assert [d.cpu_request_core_hours for d in runtime.service_days("cart")] == [48]
    assert len(other.asked) == 1


def test_the_refresh_ends_with_the_app_and_none_starts_after(tmp_path: Path) -> None:
    source = FakeGatedCostSource(cart_days(date(2024, 3, 1), date(2024, 3, 14)))
    with TestClient(create_app(_settings(tmp_path))) as client:
        runtime: CostRuntime = client.app.state.cost  # type: ignore[attr-defined]
        runtime.sources = [source]
        client.get("/api/cost", headers=ADA)
        assert source.entered.wait(GATE_SECONDS) and not runtime.wait(0)
        source.gate.set()
    assert runtime.wait(0)  # the shutdown waited for it
    source.gate.clear()  # a refresh started now would stay in the source
    runtime.expire()
    runtime.measured()
    assert runtime.wait(0)
    source.gate.set()


def test_stop_gives_up_waiting_for_a_source_that_hangs() -> None:
    source = FakeGatedCostSource()
    runtime = CostRuntime(None, prometheus=source, clock=Clock())
    runtime.measured()
    assert source.entered.wait(GATE_SECONDS)
    runtime.stop(timeout=0.01)  # returns although the source still holds the thread
    assert not runtime.wait(0)
    source.gate.set()
    assert runtime.wait(GATE_SECONDS)
    assert runtime.measured().errors == [
        "Prometheus (http://fake-cost-source): measured figures are not loaded yet"
    ]


# --------------------------------------------------------------------------- the service page

USAGE = ContainerUsage(CART, "app", D("0.5"), D("0.1"), None, None)


def test_the_service_page_asks_each_question_once(
    app: TestClient, runtime: CostRuntime, source: FakeGatedCostSource
) -> None:
    metrics = FakeUsageMetrics(containers=[USAGE])
    runtime.usage_metrics = metrics
    source.gate.set()
    runtime.refresh_now()
    for path in ("/api/cost/cart", "/cost/cart", "/api/cost/cart"):
        assert app.get(path, headers=HTML).status_code == 200
    assert sorted(metrics.asked) == ["containers cart", "tokens"]
    app.get("/api/cost/cart?window=7d", headers=ADA)  # another window: its tokens
    assert sorted(metrics.asked) == ["containers cart", "tokens", "tokens"]
