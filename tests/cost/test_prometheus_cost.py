"""The Prometheus cost source against a real Prometheus holding 14 backfilled days.

The figures below are worked out by hand from the generating rules in
``tests.cost.openmetrics_history`` (requests and usage per container and hour). The source
rounds to 1e-9, which absorbs the float noise of Prometheus' sums (0.2 core x 48 hours is
9.600000000000001 in floats), so every comparison here is exact Decimal equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest

from portal.cost.measured import price_day
from portal.cost.model import cents
from portal.integrations.cost_metrics import (
    CostSource,
    ResourceDay,
    UsageMetrics,
    Workload,
)
from portal.integrations.prometheus import (
    Prometheus,
    PrometheusClient,
    Sample,
    Series,
)
from portal.integrations.prometheus_cost import (
    PrometheusCostSource,
)
from portal.integrations.prometheus_cost_queries import daily_queries
from tests.cost.history_figures import expected_resource_days
from tests.cost.openmetrics_history import Backfill

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
def all_days(
    backfill_client: PrometheusClient, backfilled_prometheus: Backfill
) -> list[ResourceDay]:
    """``resource_days`` over the whole history (asked once for the module)."""
    source = PrometheusCostSource(backfill_client)
    return source.resource_days(backfilled_prometheus.lead_day, backfilled_prometheus.days[-1])


def test_it_is_a_cost_source_and_usage_metrics(backfill_client: PrometheusClient) -> None:
    source = PrometheusCostSource(backfill_client)
    as_cost_source: CostSource = source
    as_usage: UsageMetrics = source
    assert as_cost_source.name == "Prometheus" and as_usage.url == backfill_client.url


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
    backfill_client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    source = PrometheusCostSource(backfill_client, cluster_label="region")
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
    backfill_client: PrometheusClient, backfilled_prometheus: Backfill
) -> None:
    counting = CountingPrometheus(backfill_client)
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
