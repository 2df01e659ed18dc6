"""The time windows of the cost pages, as pure functions of the daily totals and a "today".

Every function takes ``today`` (a UTC date) instead of reading a clock, and a service's
daily totals (``date -> amount``; a day absent means the service did not run that day, so
it counts as zero, never as unknown). The rules:

- **Month to date**: the 1st of today's month through today; today as measured so far.
- **Projected month**: the complete days of the month (the 1st through yesterday) plus the
  average daily cost of the last 7 complete days times the days left, today included
  (today's partial figure is replaced by a full day at the average rate, so the projection
  does not drop in the morning). The average divides by the days from the first of those
  7 days that has data through yesterday, so a service deployed 3 days ago is averaged
  over 3 days, not 7. No data in those 7 days: when today has data the service just
  started and there is no complete day to project from (None); otherwise it stopped, and
  the projection is what the month already cost.
- **Trend**: the last N complete days (yesterday and the N-1 before), one amount per day.
- **Change**: the trend window's total against the N days before it, in percent; None
  when the previous window has no data or a zero total (never a fake 0 % or infinity).
- **Efficiency**: usage / request over the trend window, CPU and memory apart, as a sum of
  usage hours over a sum of request hours (weighted by hours), from the days with usage.
- **Estimate**: a monthly estimate (730 hours) read as an hourly rate: month to date is
  that rate over the days 1..today, the projection over every day of the month.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal, get_args

from portal.cost.measured import DayCost
from portal.cost.model import HOURS_PER_MONTH

Window = Literal["7d", "14d", "30d", "90d"]
WINDOWS: dict[str, int] = {name: int(name.removesuffix("d")) for name in get_args(Window)}
DEFAULT_WINDOW: Window = "30d"
PROJECTION_DAYS = 7
HOURS_PER_DAY = Decimal(24)

Totals = Mapping[date, Decimal]


class WindowError(ValueError):
    """A ``window`` that is not one of ``WINDOWS``; the message names the field."""

    field = "window"


def parse_window(text: str) -> int:
    """Return the number of days of a window such as ``30d``; raise ``WindowError``."""
    if text not in WINDOWS:
        known = ", ".join(WINDOWS)
        raise WindowError(f"window: must be one of {known}, not {text!r}")
    return WINDOWS[text]


def days_in_month(today: date) -> int:
    """Return the number of days of ``today``'s month (28 to 31)."""
    return calendar.monthrange(today.year, today.month)[1]


def history_start(today: date, window_days: int) -> date:
    """Return the first day a ``window_days`` figure needs: two windows, month, 7 days."""
    return min(
        today - timedelta(days=2 * window_days),
        today.replace(day=1),
        today - timedelta(days=PROJECTION_DAYS),
    )


def daily_totals(days: Iterable[DayCost]) -> dict[date, Decimal]:
    """Sum the workloads' totals per day."""
    totals: dict[date, Decimal] = {}
    for day in days:
        totals[day.day] = totals.get(day.day, Decimal(0)) + day.total
    return totals


def _sum(totals: Totals, first: date, last: date) -> Decimal:
    return sum((amount for day, amount in totals.items() if first <= day <= last), Decimal(0))


def month_to_date(totals: Totals, today: date) -> Decimal:
    """Sum the 1st of the month through today (today as measured so far)."""
    return _sum(totals, today.replace(day=1), today)


def projected_month(totals: Totals, today: date) -> Decimal | None:
    """Project the month's total by the rule in the module's docstring; None if unknown."""
    yesterday = today - timedelta(days=1)
    complete = _sum(totals, today.replace(day=1), yesterday)
    basis_first = today - timedelta(days=PROJECTION_DAYS)
    with_data = [day for day in totals if basis_first <= day <= yesterday]
    if not with_data:
        return None if today in totals else complete
    start = min(with_data)
    rate = _sum(totals, start, yesterday) / (today - start).days
    return complete + rate * (days_in_month(today) - today.day + 1)


def trend(totals: Totals, today: date, window_days: int) -> list[tuple[date, Decimal]]:
    """One amount per complete day of the window, oldest first; days without data are 0."""
    first = today - timedelta(days=window_days)
    days = (first + timedelta(days=offset) for offset in range(window_days))
    return [(day, totals.get(day, Decimal(0))) for day in days]


def window_range(today: date, window_days: int) -> tuple[date, date]:
    """Return the first and last day of the trend window (the last complete days)."""
    return today - timedelta(days=window_days), today - timedelta(days=1)


def change(totals: Totals, today: date, window_days: int) -> Decimal | None:
    """Compare the window's total with the previous window's, in percent; None: no basis."""
    first, last = window_range(today, window_days)
    before_first = first - timedelta(days=window_days)
    before_last = first - timedelta(days=1)
    previous = _sum(totals, before_first, before_last)
    if not previous:  # no day of data, or only zeros: no percentage of nothing
        return None
    return (_sum(totals, first, last) - previous) * 100 / previous


@dataclass(frozen=True, slots=True)
class Efficiency:
    """Usage / request over a window, CPU and memory; None where nothing was measured."""

    cpu: Decimal | None = None
    memory: Decimal | None = None


Pairs = Mapping[date, tuple[Decimal, Decimal]]  # day -> (usage hours, request hours)


@dataclass(frozen=True)
class Daily:
    """Measured days condensed per day: the totals, and usage / request hours.

    Only workload-days with a usage series add to ``cpu`` and ``memory``, on both sides: a
    day without usage says nothing about how well the request fits.
    """

    totals: Mapping[date, Decimal]
    cpu: Pairs
    memory: Pairs


def _pairs(days: Iterable[tuple[date, Decimal | None, Decimal]]) -> Pairs:
    sums: dict[date, list[Decimal]] = {}
    for day, usage, request in days:
        if usage is None:
            continue
        found = sums.get(day)
        if found is None:
            sums[day] = [usage, request]
        else:
            found[0] += usage
            found[1] += request
    return {day: (usage, request) for day, (usage, request) in sums.items()}


def condense(days: Iterable[DayCost]) -> Daily:
    """Sum the workloads' days per day (done once per fetch, not per page)."""
    days = list(days)
    return Daily(
        totals=daily_totals(days),
        cpu=_pairs((d.day, d.cpu_usage_core_hours, d.cpu_request_core_hours) for d in days),
        memory=_pairs((d.day, d.memory_usage_gib_hours, d.memory_request_gib_hours) for d in days),
    )


def combined_totals(parts: Sequence[Daily]) -> Mapping[date, Decimal]:
    """Sum several services' totals day by day (a team); one service's are its own."""
    if len(parts) == 1:
        return parts[0].totals
    totals: dict[date, Decimal] = {}
    for part in parts:
        for day, amount in part.totals.items():
            totals[day] = totals.get(day, Decimal(0)) + amount
    return totals


def _ratio(parts: Iterable[Pairs], first: date, last: date) -> Decimal | None:
    usage = request = Decimal(0)
    seen = False
    for pairs in parts:
        for day, (used, requested) in pairs.items():
            if first <= day <= last:
                usage, request, seen = usage + used, request + requested, True
    return usage / request if seen and request else None


def efficiency_of(parts: Sequence[Daily], first: date, last: date) -> Efficiency:
    """Sum of usage hours over sum of request hours of ``parts`` in ``first``..``last``."""
    return Efficiency(
        _ratio((part.cpu for part in parts), first, last),
        _ratio((part.memory for part in parts), first, last),
    )


def window_efficiency(days: Iterable[DayCost], first: date, last: date) -> Efficiency:
    """Sum of usage hours over sum of request hours of the days in ``first``..``last``.

    Only days with a usage series count, on both sides of the ratio: a day without usage
    says nothing about how well the request fits.
    """
    return efficiency_of([condense(days)], first, last)


def estimate_daily(monthly: Decimal) -> Decimal:
    """Read a monthly estimate of 730 hours as the cost of one 24-hour day."""
    return monthly * HOURS_PER_DAY / HOURS_PER_MONTH


def estimate_month_to_date(monthly: Decimal, today: date) -> Decimal:
    """Take a monthly estimate pro rata: the 1st through the end of today."""
    return estimate_daily(monthly) * today.day


def estimate_projected(monthly: Decimal, today: date) -> Decimal:
    """Take a monthly estimate over every day of today's month."""
    return estimate_daily(monthly) * days_in_month(today)
