"""The cost windows: month to date, projection, trend, change, efficiency (hand-computed)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from portal.cost.measured import DayCost
from portal.cost.model import cents
from portal.cost.windows import (
    WINDOWS,
    WindowError,
    change,
    days_in_month,
    estimate_month_to_date,
    estimate_projected,
    history_start,
    month_to_date,
    parse_window,
    projected_month,
    trend,
    window_efficiency,
)
from portal.integrations.cost_metrics import Workload

D = Decimal


def daily(first: date, last: date, amount: str) -> dict[date, Decimal]:
    """The same amount on every day from ``first`` to ``last``."""
    return {first + timedelta(days=n): D(amount) for n in range((last - first).days + 1)}


def test_windows_are_the_four_offered_and_others_name_the_field() -> None:
    assert WINDOWS == {"7d": 7, "14d": 14, "30d": 30, "90d": 90}
    assert parse_window("14d") == 14
    for bad in ("5d", "30", "", "30D", "1y"):
        with pytest.raises(WindowError, match=r"^window: must be one of 7d, 14d, 30d, 90d"):
            parse_window(bad)


def test_month_to_date_runs_from_the_first_through_today() -> None:
    totals = daily(date(2024, 2, 25), date(2024, 3, 15), "10") | {date(2024, 3, 15): D("3")}
    # Mar 1..14 at 10 + today's 3 so far; February is not this month.
    assert month_to_date(totals, date(2024, 3, 15)) == D("143")
    assert month_to_date(totals, date(2024, 3, 1)) == D("10")


def test_projection_mid_month_replaces_today_with_the_average() -> None:
    today = date(2024, 3, 15)  # 31 days: 17 left counting today
    totals = daily(date(2024, 3, 1), date(2024, 3, 14), "10") | {today: D("3")}
    # 14 complete days (140) + average 10 x 17 days = 310; today's partial 3 is not added.
    assert projected_month(totals, today) == D("310")


def test_projection_on_the_first_uses_the_last_week_of_the_previous_month() -> None:
    today = date(2024, 3, 1)
    totals = daily(date(2024, 2, 1), date(2024, 2, 22), "100") | daily(
        date(2024, 2, 23), date(2024, 2, 29), "7"
    )
    # Nothing complete this month; Feb 23..29 (leap year) average 7 x all 31 days.
    assert projected_month(totals, today) == D("217")


@pytest.mark.parametrize(
    ("today", "days", "expected"),
    [
        (date(2023, 2, 10), 28, D("112")),  # 9 days x 4 + 4 x 19 left
        (date(2024, 2, 10), 29, D("116")),  # a leap February
        (date(2024, 1, 31), 31, D("124")),  # the last day: 30 complete + 1 day at the rate
        (date(2024, 4, 30), 30, D("120")),
    ],
)
def test_projection_is_the_month_length_at_a_steady_rate(
    today: date, days: int, expected: Decimal
) -> None:
    totals = daily(today - timedelta(days=40), today, "4")
    assert days_in_month(today) == days
    assert projected_month(totals, today) == expected


def test_fewer_than_seven_days_average_over_the_days_since_the_first_data() -> None:
    today = date(2024, 3, 15)
    started = daily(date(2024, 3, 12), date(2024, 3, 14), "6")
    # 18 over 3 days (not 7) = 6 a day: 18 + 6 x 17 = 120.
    assert projected_month(started, today) == D("120")
    gap = {date(2024, 3, 9): D("7"), date(2024, 3, 14): D("7")}
    # The 4 days between count as zero: 14 over Mar 9..14 (6 days) x 17 + 14 = 53.67.
    assert cents(projected_month(gap, today) or D(0)) == D("53.67")


def test_no_complete_recent_day_projects_nothing_or_what_the_month_cost() -> None:
    today = date(2024, 3, 15)
    assert projected_month({today: D("5")}, today) is None  # started today
    assert projected_month({date(2024, 3, 2): D("5")}, today) == D("5")  # stopped
    assert projected_month({}, today) == D("0")


def test_trend_is_the_complete_days_oldest_first_with_zeros() -> None:
    today = date(2024, 3, 15)
    totals = {date(2024, 3, 8): D("1"), date(2024, 3, 14): D("2"), today: D("9")}
    assert trend(totals, today, 7) == [
        (date(2024, 3, 8), D("1")),
        (date(2024, 3, 9), D("0")),
        (date(2024, 3, 10), D("0")),
        (date(2024, 3, 11), D("0")),
        (date(2024, 3, 12), D("0")),
        (date(2024, 3, 13), D("0")),
        (date(2024, 3, 14), D("2")),
    ]


def test_change_against_the_previous_window_or_none() -> None:
    today = date(2024, 3, 15)
    previous = daily(date(2024, 3, 1), date(2024, 3, 7), "10")  # the 7 days before the window
    current = daily(date(2024, 3, 8), date(2024, 3, 14), "15")
    assert change(previous | current, today, 7) == D("50")
    assert change(previous, today, 7) == D("-100")  # stopped: a true -100 %
    assert change(current, today, 7) is None  # no previous data: not +infinity
    zero = daily(date(2024, 3, 1), date(2024, 3, 7), "0")
    assert change(zero | current, today, 7) is None  # a zero basis: no percentage
    assert change({}, today, 7) is None


def _day(request: str, usage: str | None, memory_usage: str | None = None) -> DayCost:
    return DayCost(
        workload=Workload("dev", "shop", "cart"),
        day=date(2024, 3, 10),
        cpu=D(0),
        memory=D(0),
        gpu=D(0),
        pv=D(0),
        total=D(0),
        cpu_efficiency=None,
        memory_efficiency=None,
        cpu_request_core_hours=D(request),
        cpu_usage_core_hours=None if usage is None else D(usage),
        memory_request_gib_hours=D(request),
        memory_usage_gib_hours=None if memory_usage is None else D(memory_usage),
    )


def test_efficiency_is_weighted_by_hours_and_skips_days_without_usage() -> None:
    days = [_day("10", "5"), _day("30", "3"), _day("1000", None)]
    found = window_efficiency(days, date(2024, 3, 1), date(2024, 3, 14))
    # (5 + 3) / (10 + 30) = 0.2, not the mean of 0.5 and 0.1; the day without usage is out.
    assert found.cpu == D("0.2")
    assert found.memory is None  # no memory usage at all
    assert window_efficiency(days, date(2024, 3, 11), date(2024, 3, 14)).cpu is None


def test_history_covers_two_windows_the_month_and_a_week() -> None:
    assert history_start(date(2024, 3, 31), 30) == date(2024, 1, 31)
    assert history_start(date(2024, 3, 31), 7) == date(2024, 3, 1)  # the month is longer
    assert history_start(date(2024, 3, 2), 7) == date(2024, 2, 17)


def test_an_estimate_is_an_hourly_rate_over_the_days() -> None:
    # 73.00 a month of 730 h = 0.10 an hour = 2.40 a day.
    assert estimate_month_to_date(D("73"), date(2024, 3, 10)) == D("24")
    assert estimate_projected(D("73"), date(2023, 2, 10)) == D("67.2")
    assert estimate_projected(D("73"), date(2024, 3, 10)) == D("74.4")
