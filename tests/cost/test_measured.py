"""Measured days: pricing, nonsense refused, one source per service, the runtime's cache."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from portal.cost.estimate import EnvironmentCost, ServiceCost
from portal.cost.figures import service_line
from portal.cost.measured import gather, price_day
from portal.cost.model import DEFAULT_PRICES, Prices, PriceSheetError, cents
from portal.cost.runtime import CostRuntime
from portal.integrations.cost_metrics import (
    CostSourceError,
    FakeCostSource,
    ResourceDay,
    Workload,
)

D = Decimal
TODAY = date(2024, 3, 15)
FIRST, LAST = date(2024, 1, 15), TODAY


def day(
    service: str,
    when: date = date(2024, 3, 10),
    *,
    env: str = "dev",
    cpu: str = "24",
    memory: str = "0",
    cpu_usage: str | None = None,
    billed: str | None = None,
) -> ResourceDay:
    """One workload-day holding ``cpu`` core-hours and ``memory`` GiB-hours."""
    return ResourceDay(
        workload=Workload(env, "apps", service),
        day=when,
        hours=D(24),
        cpu_request_core_hours=D(cpu),
        cpu_usage_core_hours=None if cpu_usage is None else D(cpu_usage),
        cpu_held_core_hours=D(cpu),
        memory_request_gib_hours=D(memory),
        memory_usage_gib_hours=None,
        memory_held_gib_hours=D(memory),
        billed=None if billed is None else D(billed),
    )


class CarelessSource(FakeCostSource):
    """A source that answers every day it has, whatever range was asked."""

    def resource_days(self, first: date, last: date) -> list[ResourceDay]:
        """Return every day given."""
        self.asked.append((first, last))
        return list(self.days)


def default_prices(_environment: str) -> Prices:
    return DEFAULT_PRICES


def test_the_worked_check_one_replica_for_a_730_hour_month() -> None:
    # 500m CPU and 1 GiB for 730 h: 365 core-h x 0.031611 + 730 GiB-h x 0.004237.
    priced = price_day(day("cart", cpu="365", memory="730"))
    assert priced.cpu == D("11.538015") and priced.memory == D("3.093010")
    assert priced.total == D("14.631025") and cents(priced.total) == D("14.63")


def test_opencost_keeps_its_own_total_and_the_request_hours_are_kept() -> None:
    priced = price_day(day("cart", cpu="24", cpu_usage="6", billed="1.50"))
    assert priced.total == D("1.50")
    assert (priced.cpu_request_core_hours, priced.cpu_usage_core_hours) == (D(24), D(6))
    assert priced.cpu_efficiency == D("0.25")


def test_each_service_comes_from_the_first_source_that_has_days_for_it() -> None:
    opencost = FakeCostSource([day("cart", billed="2.00")], name="OpenCost")
    prometheus = FakeCostSource([day("cart"), day("search"), day("")], name="Prometheus")
    measured = gather([opencost, prometheus], FIRST, LAST, default_prices)
    assert measured.source_of("cart") == "OpenCost"
    assert [d.total for d in measured.service_days("cart")] == [D("2.00")]
    assert measured.source_of("search") == "Prometheus"
    # 24 core-hours x 0.031611 = 0.758664
    assert [d.total for d in measured.service_days("search")] == [D("0.758664")]
    assert measured.source_of("") == "Prometheus"  # unattributed spend is kept
    assert measured.source_of("absent") is None and measured.service_days("absent") == []
    assert [(s.name, s.days, s.error) for s in measured.statuses] == [
        ("OpenCost", 1, None),
        ("Prometheus", 3, None),
    ]
    assert opencost.asked == prometheus.asked == [(FIRST, LAST)]


def test_a_failing_source_is_named_and_the_next_one_stands_in() -> None:
    down = CostSourceError("http://opencost:9003/allocation: connection refused")
    opencost = FakeCostSource([day("cart", billed="2.00")], name="OpenCost", error=down)
    prometheus = FakeCostSource([day("cart")], name="Prometheus")
    measured = gather([opencost, prometheus], FIRST, LAST, default_prices)
    assert measured.source_of("cart") == "Prometheus"
    assert measured.errors == [
        "OpenCost (http://fake-cost-source): http://opencost:9003/allocation: connection refused"
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (replace(day("cart"), cpu_held_core_hours=D(-1)), "cpu_held_core_hours is -1"),
        (replace(day("cart"), hours=D("NaN")), "hours is NaN"),
        (replace(day("cart"), billed=D("-0.01")), "billed is -0.01"),
        (day("cart", date(2023, 1, 1)), "outside the range asked"),
    ],
)
def test_nonsense_discards_the_whole_source_with_a_message(bad: ResourceDay, message: str) -> None:
    source = CarelessSource([day("search"), bad])
    measured = gather([source], FIRST, LAST, default_prices)
    # One bad day makes every day of the answer suspect: none is used.
    assert measured.by_service == {}
    assert "dev/apps/cart" in measured.errors[0] and message in measured.errors[0]


def test_each_environment_is_priced_with_its_sheet_and_a_broken_sheet_fails_the_source() -> None:
    sheets = {"prod": Prices(cpu_core_hour=D("1"))}
    source = FakeCostSource([day("cart", env="prod"), day("cart", date(2024, 3, 11))])
    measured = gather([source], FIRST, LAST, lambda env: sheets.get(env, DEFAULT_PRICES))
    assert [d.total for d in measured.service_days("cart")] == [D("24"), D("0.758664")]

    def broken(_env: str) -> Prices:
        raise PriceSheetError("cost/prices/prod.yaml:2: cpu_core_hour: must be a number")

    failed = gather([source], FIRST, LAST, broken)
    assert failed.by_service == {} and "cost/prices/prod.yaml:2" in failed.errors[0]


def test_an_empty_source_measures_nothing_and_says_so() -> None:
    measured = gather([FakeCostSource()], FIRST, LAST, default_prices)
    assert measured.by_service == {} and measured.statuses[0].days == 0
    assert measured.errors == []


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_the_runtime_fetches_once_for_every_window_until_stale_or_tomorrow() -> None:
    clock = Clock()
    source = FakeCostSource([day("cart")])
    runtime = CostRuntime(None, prometheus=source, clock=clock)
    runtime.refresh_now()
    for days in (7, 14, 30, 7):
        assert runtime.view(days).measured.source_of("cart") == "Prometheus"
    # 60 days back serve 7, 14 and 30-day windows and the month.
    assert source.asked == [(date(2024, 1, 15), TODAY)]
    runtime.measured(90)  # needs 180 days: the days before those held, and the unsettled two
    assert runtime.wait(5)
    runtime.measured(30)
    assert source.asked[1:] == [(date(2023, 9, 17), date(2024, 1, 14)), (date(2024, 3, 14), TODAY)]
    clock.now += timedelta(seconds=299)
    runtime.measured(30)
    assert runtime.wait(5) and len(source.asked) == 3
    clock.now += timedelta(seconds=2)  # five minutes old
    runtime.measured(30)
    assert runtime.wait(5) and len(source.asked) == 4
    clock.now = datetime(2024, 3, 15, 23, 59, tzinfo=UTC)
    runtime.measured(30)
    assert runtime.wait(5) and len(source.asked) == 5
    clock.now = datetime(2024, 3, 16, 0, 0, 1, tzinfo=UTC)  # a new day within the 5 minutes
    assert runtime.today() == date(2024, 3, 16)
    runtime.measured(30)
    assert runtime.wait(5)
    assert source.asked[-1] == (date(2024, 3, 14), date(2024, 3, 16))


def test_the_runtime_prices_each_environment_and_refuses_unreadable_sheets() -> None:
    sheets = {"prod": Prices(cpu_core_hour=D("1"))}
    runtime = CostRuntime(None, prices=lambda: sheets, clock=Clock())
    assert runtime.prices("prod").cpu_core_hour == D("1")
    assert runtime.prices("dev") == DEFAULT_PRICES

    def unreadable() -> dict[str, Prices]:
        raise PriceSheetError("cost/prices/dev.yaml:1: not valid YAML")

    source = FakeCostSource([day("cart")])
    broken = CostRuntime(None, prometheus=source, prices=unreadable, clock=Clock())
    with pytest.raises(PriceSheetError, match=r"dev\.yaml:1"):
        broken.prices("dev")
    # Measured days cannot be priced: the source fails with the sheet's error, no default.
    broken.refresh_now()
    assert broken.service_days("cart") == []
    assert "dev.yaml:1" in broken.problems()[0]


def test_a_service_measured_only_today_projects_from_its_estimate() -> None:
    estimate = ServiceCost("cart", None, (EnvironmentCost("dev", monthly=D("73")),))
    measured = gather([FakeCostSource([day("cart", TODAY)])], FIRST, LAST, default_prices)
    line = service_line("cart", estimate, measured, {}, TODAY)
    # Today's 24 core-hours so far are measured; no complete day to project from, so the
    # estimate's 0.10 an hour x 24 x 31 days stands in, labelled as such.
    assert (line.month_to_date, line.month_to_date_source) == (D("0.758664"), "Prometheus")
    assert (line.projected, line.projected_source) == (D("74.4"), "estimate")
    alone = service_line("cart", None, measured, {}, TODAY)  # not on main: nothing to use
    assert (alone.projected, alone.projected_source) == (None, None)
