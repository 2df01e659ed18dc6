"""The Prometheus source's usage metrics and refusals, against the backfilled Prometheus.

p95 usage per container, token counts and an SLO counter's increase (what only Prometheus
answers), then every way of not answering: a Prometheus that is down, a refused query,
malformed expressions and nonsense values, each raising ``CostSourceError`` naming it. The
resource days are in ``test_prometheus_cost.py``; the hand figures come from
``tests.cost.openmetrics_history``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from portal.integrations.cost_metrics import (
    CostSourceError,
)
from portal.integrations.prometheus import (
    FakePrometheus,
    PrometheusClient,
    Sample,
    Series,
)
from portal.integrations.prometheus_cost import (
    PrometheusCostSource,
)
from portal.integrations.prometheus_cost_queries import (
    MAX_EXPRESSION_BYTES,
    check_expression,
    daily_queries,
)
from portal.integrations.prometheus_local import free_port
from tests.cost.history_figures import expected_container_usage, expected_token_counts
from tests.cost.openmetrics_history import GIB, Backfill
from tests.cost.test_prometheus_cost import (
    CHECKOUT,
    CHECKOUT_STAGING,
    DEBUG,
    RANKER,
    SEARCH,
    CountingPrometheus,
)

pytestmark = pytest.mark.integration


def test_p95_usage_and_latest_requests_per_container(
    backfill_client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    source = PrometheusCostSource(backfill_client)
    start, end = backfilled_prometheus.start, backfilled_prometheus.end
    containers = [
        c
        for service in ("checkout", "search", "ranker", "")
        for c in source.container_usage(service, start, end)
    ]
    got = {
        (c.workload, c.container): (
            c.cpu_request_cores,
            c.cpu_p95_cores,
            c.memory_request_bytes,
            c.memory_p95_bytes,
        )
        for c in containers
    }
    assert got == {
        (CHECKOUT, "app"): (Decimal(1), Decimal("0.2"), Decimal(2 * GIB), Decimal(GIB // 2)),
        (CHECKOUT_STAGING, "app"): (
            Decimal(1),
            Decimal("0.2"),
            Decimal(2 * GIB),
            Decimal(GIB // 2),
        ),
        # A quarter of the day at the burst: the p95 is the burst, above the request.
        (SEARCH, "api"): (Decimal(1), Decimal("1.5"), Decimal(GIB), Decimal(3 * GIB // 2)),
        (SEARCH, "proxy"): (
            Decimal("0.25"),
            Decimal("0.1"),
            Decimal(128 * 2**20),
            Decimal(64 * 2**20),
        ),
        # Not running at the end: the last request seen still counts.
        (RANKER, "model"): (Decimal(2), Decimal(1), Decimal(8 * GIB), Decimal(6 * GIB)),
        # Unlabelled (the toolbox, without kube_pod_labels, cannot be found): the request
        # halved on day 7 is the one shown; no usage series, no p95.
        (DEBUG, "shell"): (Decimal("0.25"), None, Decimal(256 * 2**20), None),
    }
    expected = expected_container_usage(end)
    by_key = {(c.workload, c.container): c for c in containers}
    assert by_key == {(c.workload, c.container): c for c in expected}  # the generator agrees
    assert source.container_usage('no"such\\service', start, end) == []  # quoted, not parsed


def test_token_counts_by_workload_model_and_kind(
    backfill_client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    source = PrometheusCostSource(backfill_client)
    end = backfilled_prometheus.end
    got = {
        (t.workload, t.model, t.kind): t.tokens
        for t in source.token_counts(end - timedelta(days=1), end)
    }
    assert got == {  # 288 five-minute steps a day
        (SEARCH, "gpt-4o-mini", "input"): 288_000,  # labels model, type, service
        (SEARCH, "gpt-4o-mini", "output"): 57_600,
        (RANKER, "llama-3-8b", "input"): 86_400,  # OpenTelemetry GenAI's label names
        (RANKER, "llama-3-8b", "output"): 28_800,
    }
    assert source.token_counts(end - timedelta(days=1), end) == expected_token_counts(
        end - timedelta(days=1), end
    )


def test_increase_of_an_slo_counter(
    backfill_client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    source = PrometheusCostSource(backfill_client)
    end = backfilled_prometheus.end
    day, hour = end - timedelta(days=1), end - timedelta(hours=1)
    total = 'http_requests_total{job="checkout"}'  # 600 requests per 5 minutes
    assert source.increase(total, day, end) == 172_800
    assert source.increase(f"  {total}  ", hour, end) == 7_200
    assert source.increase(f"sum by (code) ({total})", day, end) == 172_800  # a subquery
    assert source.increase('http_requests_total{job="nobody"}', day, end) is None


def test_prometheus_down_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    down = PrometheusClient(url, timeout=2)
    source = PrometheusCostSource(down)
    end = datetime.fromisoformat("2025-03-15T00:00:00+00:00")
    calls: list[Callable[[], object]] = [
        lambda: source.resource_days(end.date(), end.date()),
        lambda: source.container_usage("search", end - timedelta(days=1), end),
        lambda: source.token_counts(end - timedelta(days=1), end),
        lambda: source.increase("up", end - timedelta(days=1), end),
    ]
    try:
        for call in calls:
            with pytest.raises(CostSourceError, match=f"Prometheus at {url}: the .* query failed"):
                call()
    finally:
        down.close()


def test_a_refused_query_is_named(
    backfill_client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    source = PrometheusCostSource(CountingPrometheus(backfill_client, spoil="label_replace"))
    day = backfilled_prometheus.days[0]
    with pytest.raises(
        CostSourceError, match=f"Prometheus at {backfill_client.url}: the cpu_held query"
    ):
        source.resource_days(day, day)
    end = backfilled_prometheus.end
    with pytest.raises(CostSourceError, match=r"the increase query failed: .*range vector"):
        PrometheusCostSource(backfill_client).increase("rate(up)", end - timedelta(days=1), end)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("up) or vector(1e9", "unmatched ')'"),
        ('up{job="a"', "missing '}'"),
        ("(up]", "unmatched ']'"),
        ('up{job="a}', "unterminated string"),
        ("up # the rest is a comment", "comment at 4"),
        ("up\n", "control character"),
        ("  ", "empty"),
        ("up" + " " * MAX_EXPRESSION_BYTES, "longer than 4096 bytes"),
    ],
)
def test_malformed_expressions_are_refused_unasked(
    backfill_client: PrometheusClient, expression: str, reason: str
) -> None:
    counting = CountingPrometheus(backfill_client)
    end = datetime.fromisoformat("2025-03-15T00:00:00+00:00")
    with pytest.raises(
        CostSourceError, match=f"increase expression is refused: {re.escape(reason)}"
    ):
        PrometheusCostSource(counting).increase(expression, end - timedelta(days=1), end)
    assert counting.calls == []


def test_expressions_that_close_are_accepted() -> None:
    padded = 'http_requests_total{job="a)"}'.ljust(MAX_EXPRESSION_BYTES)
    for text in (padded, "sum(rate(x[5m])) / 2", "x{a=`#(`}", "x{a='\\''}"):
        assert check_expression(text) == text


def _fake_days(value: float, at: float) -> FakePrometheus:
    series = [Series({"cluster": "prod", "namespace": "shop"}, [(at, value)])]
    return FakePrometheus(ranges={q: series for q in daily_queries("cluster").values()})


@pytest.mark.parametrize(
    ("value", "at", "shown"),
    [
        (math.nan, 1741046400.0, "nan"),
        (-1.0, 1741046400.0, "-1.0"),
        (1.0, 1741046400.0 + 3600, "a point at"),  # not a day's end
        (1.0, 1741046400.0 + 86400, "a point at"),  # a day not asked for
    ],
)
def test_nonsense_answers_raise_naming_the_query(value: float, at: float, shown: str) -> None:
    source = PrometheusCostSource(_fake_days(value, at))
    with pytest.raises(CostSourceError, match=f"the pod_hours query gave .*{shown}.*namespace"):
        source.resource_days(date(2025, 3, 3), date(2025, 3, 3))  # evaluated at 4 March 00:00


def test_a_workload_missing_from_the_held_queries_holds_its_request() -> None:
    # A pod that appears between the request and the held queries (today's data).
    queries = daily_queries("cluster")
    labels = {"cluster": "prod", "namespace": "shop", "label_app_kubernetes_io_name": "new"}
    at = 1741046400.0  # the end of 3 March
    ranges = {
        queries["cpu_request"]: [Series(labels, [(at, 2.0)])],
        queries["memory_request"]: [Series(labels, [(at, float(GIB))])],
    }
    (day,) = PrometheusCostSource(FakePrometheus(ranges=ranges)).resource_days(
        date(2025, 3, 3), date(2025, 3, 3)
    )
    assert (day.cpu_held_core_hours, day.memory_held_gib_hours) == (Decimal(2), Decimal(1))
    assert day.cpu_usage_core_hours is None and day.hours == 0


@dataclass
class FakeAnswers:
    """A fake Prometheus that answers every range query with the same series."""

    series: list[Series]
    url: str = "http://prometheus.fake:9090"

    def query(self, promql: str) -> list[Sample]:
        """Not used by the cost source."""
        raise AssertionError("the cost source evaluates at a time, never at now")

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Return the given series."""
        return self.series

    def is_up(self) -> bool:
        """Always up."""
        return True


@pytest.mark.parametrize(
    "points",
    [[], [(1741996800.0, 1.0), (1741996860.0, 1.0)], [(1741996860.0, 1.0)]],
)
def test_an_instant_answer_must_be_one_point_at_the_asked_time(
    points: list[tuple[float, float]],
) -> None:
    source = PrometheusCostSource(FakeAnswers([Series({"container": "api"}, points)]))
    end = datetime.fromisoformat("2025-03-15T00:00:00+00:00")
    with pytest.raises(CostSourceError, match=r"the cpu_p95 query gave .*container='api'"):
        source.container_usage("search", end - timedelta(days=1), end)


def test_the_cluster_label_must_be_a_label_name() -> None:
    with pytest.raises(ValueError, match="not a Prometheus label name"):
        PrometheusCostSource(FakePrometheus(), cluster_label="cluster) or vector(1) #")
