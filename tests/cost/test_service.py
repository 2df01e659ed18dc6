"""The service cost figures (pure): breakdown, request vs usage, unit cost, the request SLO."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portal.cost.estimate import EnvironmentCost, ServiceCost
from portal.cost.measured import DayCost
from portal.cost.model import DEFAULT_PRICES
from portal.cost.rightsizing import DeployedContainer, recommend
from portal.cost.service import (
    estimate_breakdown,
    in_window,
    measured_breakdown,
    pick_request_slo,
    recommendation_rows,
    request_counter,
    request_usage_charts,
    unit_cost,
)
from portal.integrations.cost_metrics import ContainerUsage, Workload
from portal.slo.compiler.generate import GenerateOptions, resolve_sources

D = Decimal
PROD = Workload("prod", "aq", "air-quality")
DEV = Workload("dev", "aq", "air-quality")


def day_cost(
    workload: Workload,
    when: date,
    cpu: str,
    memory: str,
    *,
    gpu: str = "0",
    pv: str = "0",
    usage: str | None = "12",
    currency: str = "USD",
) -> DayCost:
    total = D(cpu) + D(memory) + D(gpu) + D(pv)
    return DayCost(
        workload=workload,
        day=when,
        cpu=D(cpu),
        memory=D(memory),
        gpu=D(gpu),
        pv=D(pv),
        total=total,
        cpu_efficiency=None,
        memory_efficiency=None,
        cpu_request_core_hours=D(24),  # one core all day
        cpu_usage_core_hours=None if usage is None else D(usage),
        memory_request_gib_hours=D(48),  # 2 GiB all day
        memory_usage_gib_hours=None if usage is None else D(usage),
        currency=currency,
    )


def test_the_breakdown_sums_per_environment_and_resource_to_the_cent() -> None:
    days = [
        day_cost(PROD, date(2024, 5, 1), "0.758664", "0.203376", pv="0.001315"),
        day_cost(PROD, date(2024, 5, 2), "0.758664", "0.203376", pv="0.001315"),
        day_cost(DEV, date(2024, 5, 1), "0.189666", "0.050844", gpu="0.95"),
    ]
    breakdown = measured_breakdown(days, date(2024, 5, 1), date(2024, 5, 2), "Prometheus")
    assert breakdown.kind == "measured"
    assert breakdown.source == "measured by Prometheus"
    rows = {row.environment: row for row in breakdown.rows}
    assert (rows["prod"].cpu, rows["prod"].memory, rows["prod"].pv) == ("1.52", "0.41", "0.00")
    assert rows["prod"].total == "1.93"  # 1.517328 + 0.406752 + 0.00263 = 1.92671
    assert (rows["dev"].gpu, rows["dev"].total) == ("0.95", "1.19")  # 1.19051
    assert breakdown.total is not None
    assert breakdown.total.total == "3.12"  # 1.92671 + 1.19051 = 3.11722
    assert breakdown.total.cpu == "1.71"  # 1.706994


def test_two_currencies_are_never_summed() -> None:
    days = [
        day_cost(PROD, date(2024, 5, 1), "1", "1"),
        day_cost(DEV, date(2024, 5, 1), "1", "1", currency="EUR"),
    ]
    breakdown = measured_breakdown(days, date(2024, 5, 1), date(2024, 5, 1), "OpenCost")
    assert breakdown.total is None
    assert {row.currency for row in breakdown.rows} == {"USD", "EUR"}


def test_the_window_keeps_its_days_only() -> None:
    days = [day_cost(PROD, date(2024, 5, d), "1", "1") for d in (1, 2, 3)]
    assert [d.day.day for d in in_window(days, date(2024, 5, 2), date(2024, 5, 3))] == [2, 3]


def test_the_estimate_is_labelled_and_keeps_environment_errors() -> None:
    cost = ServiceCost(
        "air-quality",
        "group:default/team-air",
        (
            EnvironmentCost("prod", monthly=D("45.3"), cpu=D("34.6"), memory=D("10.7")),
            EnvironmentCost("dev", error="deploy/overlays/dev does not build"),
        ),
    )
    breakdown = estimate_breakdown(cost)
    assert breakdown.kind == "estimate"
    assert breakdown.source == "estimate from manifests on main"
    rows = {row.environment: row for row in breakdown.rows}
    assert rows["prod"].total == "45.30"
    assert rows["prod"].gpu is None  # the estimate has no GPU / PV split
    assert rows["dev"].error == "deploy/overlays/dev does not build"
    assert estimate_breakdown(None).kind == "none"


def test_request_vs_usage_is_a_daily_average_with_gaps_for_missing_usage() -> None:
    days = [
        day_cost(PROD, date(2024, 5, 1), "1", "1", usage="6"),
        day_cost(DEV, date(2024, 5, 1), "1", "1", usage="6"),
        day_cost(PROD, date(2024, 5, 2), "1", "1", usage=None),  # no usage series
    ]
    cpu, memory = request_usage_charts(days, date(2024, 5, 1), date(2024, 5, 3))
    assert cpu.x == [1714521600, 1714608000, 1714694400]
    requested, used = cpu.series
    # Two workloads of 24 core-hours on May 1: 2 cores; usage 12 core-hours: 0.5 cores.
    assert requested.values == ["2.000", "1.000", None]
    assert used.values == ["0.500", None, None]  # May 2 has no usage: a gap, not a zero
    assert memory.series[0].values == ["4.000", "2.000", None]
    assert cpu.has_data


def test_unit_cost_is_cost_per_million_requests() -> None:
    # 93.61 over 30 days for 4,500,000 requests: 93.61 / 4.5 = 20.80222...
    unit = unit_cost(D("93.61"), "USD", D("4500000"), "requests-availability")
    assert (unit.per_million, unit.requests, unit.reason) == ("20.80", "4500000", None)
    assert (
        unit_cost(D(1), "USD", None, "x").reason == "the SLO x has no request series in this window"
    )
    zero = unit_cost(D(1), "USD", D(0), "x")
    assert zero.per_million is None and zero.reason is not None


SPEC = """\
version: prometheus/v1
service: air-quality
slos:
  - name: data-freshness
    objective: 99
    sli:
      events:
        error_query: sum(rate(checks_total{fresh="false"}[{{.window}}]))
        total_query: sum(rate(checks_total[{{.window}}]))
    alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}
  - name: requests-availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total[{{.window}}]))
    alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}
"""


def test_the_request_slo_is_preferred_and_its_counter_is_found() -> None:
    slos = resolve_sources({"slo.yaml": SPEC}, GenerateOptions())
    chosen = pick_request_slo(slos)
    assert chosen is not None and chosen.name == "requests-availability"
    assert request_counter(chosen) == "http_requests_total"
    freshness = [slo for slo in slos if slo.name == "data-freshness"]
    assert pick_request_slo(freshness) == freshness[0]  # any event total, lacking a better one
    assert pick_request_slo([]) is None


def total(query: str) -> str | None:
    spec = SPEC.replace("sum(rate(http_requests_total[{{.window}}]))", query)
    (slo,) = [s for s in resolve_sources({"slo.yaml": spec}, GenerateOptions()) if "req" in s.name]
    return request_counter(slo)


@pytest.mark.parametrize(
    ("query", "counter"),
    [
        (
            'sum(rate(http_requests_total{job="aq",path=~"/(a|b)[x]"}[{{.window}}]))',
            'http_requests_total{job="aq",path=~"/(a|b)[x]"}',
        ),
        (
            "sum(rate(a[{{.window}}])) + sum(increase(b{x='1'}[{{.window}}]))",
            "sum(a) + sum(b{x='1'})",
        ),
        ("sum by (code) (rate(c[{{.window}}]))", "sum by (code) (c)"),
        ("sum(avg_over_time(up[{{.window}}]))", None),
        ("sum(rate(c[{{.window}}] offset 1h))", None),
    ],
)
def test_the_counter_of_a_total_query(query: str, counter: str | None) -> None:
    assert total(query) == counter


def test_recommendation_rows_write_quantities_and_cents() -> None:
    container = DeployedContainer(
        "prod", "aq", "Deployment", "air-quality", "app", D("0.5"), D(2**30), 3, "HPA minimum 3"
    )
    usage = ContainerUsage(PROD, "app", None, D("0.058"), None, D(150 * 2**20))
    (row,) = recommendation_rows(recommend([container], [usage], {"prod": DEFAULT_PRICES}))
    assert row.workload == "Deployment/air-quality"
    assert row.monthly_saving == "37.42"
    cpu, memory = row.advice
    assert (cpu.current, cpu.p95, cpu.recommended, cpu.monthly_saving) == (
        "500m",
        "58m",
        "70m",
        "29.77",
    )
    assert (memory.current, memory.recommended, memory.monthly_saving) == (
        "1024Mi",
        "180Mi",
        "7.65",
    )
