"""The service page's usage-metrics answers, kept per service and window (``UsageAnswers``).

A ``FakeGatedUsageMetrics`` answers the p95 usage only once the test opens its gate, so
concurrent first requests meet while the query is in flight; a ``Seconds`` clock moves
the answers past their time. The page's own use is in ``test_runtime_refresh``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from portal.cost.usage_answers import UsageAnswers
from portal.integrations.cost_metrics import (
    ContainerUsage,
    CostSourceError,
    FakeUsageMetrics,
    Workload,
)

D = Decimal
GATE_SECONDS = 10.0  # a test that forgets to open the gate fails instead of hanging
CART = Workload("prod", "shop", "cart")
WEEK = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 15, tzinfo=UTC))
USAGE = ContainerUsage(CART, "app", D("0.5"), D("0.1"), None, None)


@dataclass
class FakeGatedUsageMetrics(FakeUsageMetrics):
    """A ``FakeUsageMetrics`` whose p95 usage answers once ``gate`` is open."""

    gate: threading.Event = field(default_factory=threading.Event)

    def container_usage(self, service: str, start: datetime, end: datetime) -> list[ContainerUsage]:
        """Wait for the gate, then answer as ``FakeUsageMetrics``."""
        if not self.gate.wait(GATE_SECONDS):
            raise AssertionError("the test never opened the gate")
        return super().container_usage(service, start, end)


class Seconds:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_first_requests_for_one_service_make_one_query() -> None:
    metrics = FakeGatedUsageMetrics(containers=[USAGE])
    cached = UsageAnswers().wrap(metrics)
    assert cached is not None
    answers: list[list[ContainerUsage]] = []
    threads = [
        threading.Thread(target=lambda: answers.append(cached.container_usage("cart", *WEEK)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    metrics.gate.set()
    for thread in threads:
        thread.join(GATE_SECONDS)
    assert answers == [[USAGE]] * 4 and metrics.asked == ["containers cart"]


def test_answers_are_kept_per_service_and_window_for_minutes() -> None:
    seconds = Seconds()
    metrics = FakeGatedUsageMetrics(containers=[USAGE], increases={"up": D(7)})
    metrics.gate.set()
    cache = UsageAnswers(seconds=180, failure_seconds=30, clock=seconds)
    cached = cache.wrap(metrics)
    assert cached is not None
    for _ in range(2):
        assert cached.container_usage("cart", *WEEK) == [USAGE]
        assert cached.increase("up", *WEEK) == D(7)
        assert cached.token_counts(*WEEK) == []
    assert metrics.asked == ["containers cart", "increase up", "tokens"]
    cached.container_usage("search", *WEEK)  # another service
    cached.container_usage("cart", WEEK[0] - timedelta(days=1), WEEK[1])  # another window
    assert metrics.asked[3:] == ["containers search", "containers cart"]
    seconds.now += 180  # three minutes on: asked again
    cached.container_usage("cart", *WEEK)
    assert metrics.asked[5:] == ["containers cart"]
    other = FakeGatedUsageMetrics(containers=[])  # another source is another key
    other.gate.set()
    assert cache.wrap(other) is not None and cache.wrap(other).container_usage("cart", *WEEK) == []  # type: ignore[union-attr]


def test_a_failure_is_kept_half_a_minute() -> None:
    seconds = Seconds()
    metrics = FakeGatedUsageMetrics(error=CostSourceError("timed out after 5 s"))
    metrics.gate.set()
    cached = UsageAnswers(seconds=180, failure_seconds=30, clock=seconds).wrap(metrics)
    assert cached is not None
    for _ in range(2):
        with pytest.raises(CostSourceError, match="timed out after 5 s"):
            cached.token_counts(*WEEK)
    assert metrics.asked == ["tokens"]
    seconds.now += 30
    metrics.error = None
    assert cached.token_counts(*WEEK) == [] and metrics.asked == ["tokens", "tokens"]
