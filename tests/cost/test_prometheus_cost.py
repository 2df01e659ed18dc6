"""The Prometheus cost source against a real Prometheus holding 14 backfilled days.

The figures below are worked out by hand from the generating rules in
``tests.cost.openmetrics_history`` (requests and usage per container and hour). The source
rounds to 1e-9, which absorbs the float noise of Prometheus' sums (0.2 core x 48 hours is
9.600000000000001 in floats), so every comparison here is exact Decimal equality.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from portal.cost.measured import price_day
from portal.cost.model import cents
from portal.integrations.cost_metrics import (
    CostSource,
    CostSourceError,
    ResourceDay,
    UsageMetrics,
    Workload,
)
from portal.integrations.prometheus import (
    FakePrometheus,
    Prometheus,
    PrometheusClient,
    Sample,
    Series,
)
from portal.integrations.prometheus_cost import (
    MAX_EXPRESSION_BYTES,
    PrometheusCostSource,
    check_expression,
    daily_queries,
)
from portal.integrations.prometheus_local import free_port
from tests.cost.openmetrics_history import (
    GIB,
    Backfill,
    expected_container_usage,
    expected_resource_days,
    expected_token_counts,
)

pytestmark = pytest.mark.integration

CHECKOUT = Workload("prod", "shop", "checkout")
CHECKOUT_STAGING = Workload("staging", "shop", "checkout")
SEARCH = Workload("prod", "search", "search")
RANKER = Workload("prod", "ml", "ranker")
DEBUG = Workload("prod", "shop", "")  # kube_pod_labels without the app label
TOOLBOX = Workload("staging", "shop", "")  # no kube_pod_labels at all

# hours, CPU request / usage / held core-hours, memory request / usage / held GiB-hours,
# GPU hours, PV GiB-hours: one day, by hand (per replica 1 core, 2 GiB held; 0.2, 0.5 used).
Figures = tuple[str, str, str | None, str, str, str | None, str, str, str]
CHECKOUT_TWO: Figures = ("48", "48", "9.6", "48", "96", "24", "96", "0", "0")
CHECKOUT_PART: Figures = ("60", "60", "12", "60", "120", "30", "120", "0", "0")  # +12 h
CHECKOUT_THREE: Figures = ("72", "72", "14.4", "72", "144", "36", "144", "0", "0")
CHECKOUT_ONE: Figures = ("24", "24", "4.8", "24", "48", "12", "48", "0", "0")
# api 1 core / 1 GiB using 0.5 / 0.75 for 18 h and 1.5 / 1.5 for 6 h; proxy 0.25 core /
# 0.125 GiB using 0.1 / 0.0625: held 1x18 + 1.5x6 + 0.25x24 = 33 core-hours.
SEARCH_DAY: Figures = ("24", "30", "20.4", "33", "27", "24", "30", "0", "0")
# 06:00-18:00: 2 cores, 8 GiB, 1 GPU, 100 GiB claim; using 1 core, 6 GiB.
RANKER_DAY: Figures = ("12", "24", "12", "24", "96", "72", "96", "12", "1200")
DEBUG_DAY: Figures = ("24", "12", None, "12", "6", None, "6", "0", "0")  # no usage series
DEBUG_HALVED: Figures = ("24", "6", None, "6", "6", None, "6", "0", "0")  # from day 7
TOOLBOX_DAY: Figures = ("24", "6", "12", "12", "12", "6", "12", "0", "0")  # 0.5 on 0.25


def figures(day: ResourceDay) -> Figures:
    """A day's figures as the strings of the tables above (trailing zeros dropped)."""

    def text(value: Decimal | None) -> str | None:
        return None if value is None else f"{value.normalize():f}"

    values = (
        day.hours,
        day.cpu_request_core_hours,
        day.cpu_usage_core_hours,
        day.cpu_held_core_hours,
        day.memory_request_gib_hours,
        day.memory_usage_gib_hours,
        day.memory_held_gib_hours,
        day.gpu_hours,
        day.pv_gib_hours,
    )
    found = tuple(text(value) for value in values)
    return found  # type: ignore[return-value]


def hand_table(backfill: Backfill) -> dict[tuple[date, Workload], Figures]:
    """Every workload's figures per day: the scenario of openmetrics_history, by hand."""
    table: dict[tuple[date, Workload], Figures] = {
        (backfill.lead_day, CHECKOUT_STAGING): CHECKOUT_ONE
    }
    for n, day in enumerate(backfill.days):
        checkout = CHECKOUT_TWO if n < 7 else CHECKOUT_PART if n == 7 else CHECKOUT_THREE
        table[(day, CHECKOUT)] = checkout
        table[(day, CHECKOUT_STAGING)] = CHECKOUT_ONE
        table[(day, SEARCH)] = SEARCH_DAY
        table[(day, RANKER)] = RANKER_DAY
        table[(day, DEBUG)] = DEBUG_DAY if n < 7 else DEBUG_HALVED
        table[(day, TOOLBOX)] = TOOLBOX_DAY
    return table


@dataclass
class CountingPrometheus:
    """Wraps a real Prometheus: records every query, and breaks those containing ``spoil``."""

    inner: Prometheus
    spoil: str | None = None
    calls: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The wrapped Prometheus' URL."""
        return self.inner.url

    def query(self, promql: str) -> list[Sample]:
        """Record and pass on."""
        self.calls.append(promql)
        return self.inner.query(promql)

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Record and pass on (with a syntax error appended when it contains ``spoil``)."""
        self.calls.append(promql)
        if self.spoil is not None and self.spoil in promql:
            promql += " +"
        return self.inner.query_range(promql, start, end, step)

    def is_up(self) -> bool:
        """Pass on."""
        return self.inner.is_up()


@pytest.fixture(scope="module")
def client(backfilled_prometheus: Backfill) -> Iterator[PrometheusClient]:
    """A client of the backfilled Prometheus."""
    prometheus = PrometheusClient(backfilled_prometheus.url)
    yield prometheus
    prometheus.close()


@pytest.fixture(scope="module")
def all_days(client: PrometheusClient, backfilled_prometheus: Backfill) -> list[ResourceDay]:
    """``resource_days`` over the whole history (asked once for the module)."""
    source = PrometheusCostSource(client)
    return source.resource_days(backfilled_prometheus.lead_day, backfilled_prometheus.days[-1])


def test_it_is_a_cost_source_and_usage_metrics(client: PrometheusClient) -> None:
    source = PrometheusCostSource(client)
    as_cost_source: CostSource = source
    as_usage: UsageMetrics = source
    assert as_cost_source.name == "Prometheus" and as_usage.url == client.url


def test_resource_days_are_the_hand_figures(
    all_days: list[ResourceDay], backfilled_prometheus: Backfill
) -> None:
    got = {(day.day, day.workload): figures(day) for day in all_days}

    assert got == hand_table(backfilled_prometheus)
    assert all_days == expected_resource_days(backfilled_prometheus.end)  # the generator agrees
    assert [d.day for d in all_days] == sorted(d.day for d in all_days)


def test_held_is_the_larger_of_request_and_usage_per_container_and_hour(
    all_days: list[ResourceDay], backfilled_prometheus: Backfill
) -> None:
    search = next(d for d in all_days if d.workload == SEARCH)
    # Above both totals: the burst hours count at usage, the others at the request. Taking
    # the max per pod (1.25 cores against 0.6 or 1.6 used) would give 32.1.
    assert search.cpu_held_core_hours == 33 > search.cpu_request_core_hours == 30
    assert search.cpu_usage_core_hours == Decimal("20.4")
    toolbox = next(d for d in all_days if d.workload == TOOLBOX)
    assert toolbox.cpu_held_core_hours == toolbox.cpu_usage_core_hours == 12  # over request
    checkout = next(d for d in all_days if d.workload == CHECKOUT)
    assert checkout.cpu_held_core_hours == checkout.cpu_request_core_hours == 48  # idle
    assert checkout.cpu_usage_core_hours == Decimal("9.6")  # no pod cgroup, no pause


def test_part_days_count_the_hours_run(
    all_days: list[ResourceDay], backfilled_prometheus: Backfill
) -> None:
    ranker = [d for d in all_days if d.workload == RANKER]
    assert len(ranker) == 14 and {d.hours for d in ranker} == {12}  # 06:00 to 18:00
    checkout = {d.day: d.hours for d in all_days if d.workload == CHECKOUT}
    assert checkout[backfilled_prometheus.days[7]] == 60  # a third replica from noon
    assert all(
        d.workload == CHECKOUT_STAGING
        for d in all_days
        if d.day < backfilled_prometheus.start.date()
    )


def test_pods_without_the_app_label_are_kept_with_service_empty(
    all_days: list[ResourceDay],
) -> None:
    debug = next(d for d in all_days if d.workload == DEBUG)
    assert debug.cpu_usage_core_hours is None and debug.memory_usage_gib_hours is None
    assert debug.cpu_held_core_hours == debug.cpu_request_core_hours == 12  # request held
    toolbox = next(d for d in all_days if d.workload == TOOLBOX)
    assert toolbox.hours == 24  # found although kube-state-metrics has no labels for it


def test_series_without_the_cluster_label_have_environment_empty(
    client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    source = PrometheusCostSource(client, cluster_label="region")
    day = backfilled_prometheus.days[0]
    checkout = next(d for d in source.resource_days(day, day) if d.workload.service == "checkout")
    assert checkout.workload == Workload("", "shop", "checkout")
    assert checkout.hours == 72  # prod's two replicas and staging's one


def test_priced_days_match_the_hand_cost(all_days: list[ResourceDay]) -> None:
    ranker = next(d for d in all_days if d.workload == RANKER)
    # 24 x 0.031611 + 96 x 0.004237 + 12 x 0.95 + 1200 x 0.00005479452
    assert price_day(ranker).total == Decimal("12.631169424")
    checkout = next(d for d in all_days if d.workload == CHECKOUT)
    assert cents(price_day(checkout).total) == Decimal("1.92")  # 48 x 0.031611 + 96 x 0.004237


def test_the_number_of_queries_does_not_grow_with_workloads(
    client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    counting = CountingPrometheus(client)
    source = PrometheusCostSource(counting)
    lead = backfilled_prometheus.lead_day

    assert len(source.resource_days(lead, lead)) == 1
    one = len(counting.calls)
    counting.calls.clear()
    every = source.resource_days(lead, backfilled_prometheus.days[-1])
    assert len({d.workload for d in every}) == 6
    assert one == len(counting.calls) == len(daily_queries("cluster")) == 9

    start, end = backfilled_prometheus.start, backfilled_prometheus.end
    for service in ("search", "checkout"):  # one environment, two
        counting.calls.clear()
        source.container_usage(service, start, end)
        assert len(counting.calls) == 3


def test_p95_usage_and_latest_requests_per_container(
    client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    source = PrometheusCostSource(client)
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
    client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    source = PrometheusCostSource(client)
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
    client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    source = PrometheusCostSource(client)
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
    client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    source = PrometheusCostSource(CountingPrometheus(client, spoil="label_replace"))
    day = backfilled_prometheus.days[0]
    with pytest.raises(CostSourceError, match=f"Prometheus at {client.url}: the cpu_held query"):
        source.resource_days(day, day)
    end = backfilled_prometheus.end
    with pytest.raises(CostSourceError, match=r"the increase query failed: .*range vector"):
        PrometheusCostSource(client).increase("rate(up)", end - timedelta(days=1), end)


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
    client: PrometheusClient, expression: str, reason: str
) -> None:
    counting = CountingPrometheus(client)
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
