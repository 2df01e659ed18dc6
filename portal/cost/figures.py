"""Each service's figures as exact Decimals, and their sums per team and environment.

A service's figures come from the first measured source that has days for it (OpenCost,
then Prometheus: :func:`portal.cost.measured.gather` decides), else from the manifest
estimate of main, labelled ``estimate``; the projection alone falls back to the estimate
when the measured days cannot project (a service that started today). Trend, change and
efficiency exist only where something was measured: an estimate has no history and no
usage, so those stay None rather than look measured. The rules of every window are in
:mod:`portal.cost.windows`.

Sums of several services (a team, an environment) are None where any part is None, and
carry every source they were made of (``OpenCost + estimate``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from portal.cost.estimate import CostIndex, EnvironmentCost, ServiceCost
from portal.cost.measured import DayCost, Measured
from portal.cost.model import DEFAULT_PRICES
from portal.cost.windows import (
    Daily,
    Efficiency,
    change,
    combined_totals,
    condense,
    efficiency_of,
    estimate_month_to_date,
    estimate_projected,
    month_to_date,
    projected_month,
    trend,
    window_range,
)
from portal.slo.store import team_name

ESTIMATE = "estimate"
NO_CLUSTER = "(no cluster label)"


def joined(values: Iterable[str | None]) -> str | None:
    """Return the distinct non-empty values, sorted, joined with `` + ``; None if none."""
    return " + ".join(sorted({value for value in values if value})) or None


@dataclass(frozen=True)
class EnvironmentFigure:
    """One environment of one service (or a team's sum of them)."""

    environment: str
    monthly: Decimal | None  # the manifest estimate; None when the overlay did not build
    month_to_date: Decimal | None
    source: str | None
    currency: str
    error: str | None = None


@dataclass(frozen=True)
class ServiceLine:
    """One service: its estimate, measured days and month figures with their sources."""

    service: str
    team: str | None
    estimate: ServiceCost | None
    source: str | None  # the measured source, None when only estimated
    daily: Daily  # the measured days condensed (empty when only estimated)
    month_to_date: Decimal
    month_to_date_source: str
    projected: Decimal | None
    projected_source: str | None
    currencies: frozenset[str]
    environments: tuple[EnvironmentFigure, ...] = ()

    @property
    def monthly(self) -> Decimal:
        """The manifest estimate's monthly amount (0 when main has no such service)."""
        return self.estimate.monthly if self.estimate else Decimal(0)


@dataclass(frozen=True)
class Figures:
    """The figures of one service or a sum of services, over one window."""

    monthly: Decimal
    month_to_date: Decimal
    month_to_date_source: str | None
    projected: Decimal | None
    projected_source: str | None
    trend: list[tuple[date, Decimal]] = field(default_factory=list)
    trend_source: str | None = None
    change: Decimal | None = None
    efficiency: Efficiency = field(default_factory=Efficiency)
    currency: str = DEFAULT_PRICES.currency


def _measured_environments(
    days: Iterable[DayCost], source: str, today: date
) -> dict[str, EnvironmentFigure]:
    first = today.replace(day=1)
    found: dict[str, EnvironmentFigure] = {}
    for day in days:
        name = day.workload.environment or NO_CLUSTER
        before = found[name].month_to_date or Decimal(0) if name in found else Decimal(0)
        amount = day.total if first <= day.day <= today else Decimal(0)
        found[name] = EnvironmentFigure(name, None, before + amount, source, day.currency)
    return found


def _estimated_environment(env: EnvironmentCost, today: date) -> EnvironmentFigure:
    built = not env.error or bool(env.monthly)
    mtd = estimate_month_to_date(env.monthly, today) if built else None
    monthly = env.monthly if built else None
    return EnvironmentFigure(env.environment, monthly, mtd, ESTIMATE, env.currency, env.error)


def _environments(
    estimate: ServiceCost | None, days: tuple[DayCost, ...], source: str | None, today: date
) -> tuple[EnvironmentFigure, ...]:
    estimated = {
        env.environment: _estimated_environment(env, today)
        for env in (estimate.environments if estimate else ())
    }
    measured = _measured_environments(days, source, today) if source else {}
    rows = []
    for name in sorted(estimated.keys() | measured.keys()):
        guess, seen = estimated.get(name), measured.get(name)
        if seen is None:
            assert guess is not None
            # Measured service, but nothing measured here: the estimate is no measurement.
            rows.append(guess if source is None else _unmeasured(guess))
            continue
        monthly, error = (guess.monthly, guess.error) if guess else (None, None)
        rows.append(
            EnvironmentFigure(name, monthly, seen.month_to_date, source, seen.currency, error)
        )
    return tuple(rows)


def _unmeasured(guess: EnvironmentFigure) -> EnvironmentFigure:
    return EnvironmentFigure(
        guess.environment, guess.monthly, None, None, guess.currency, guess.error
    )


def service_line(
    service: str,
    estimate: ServiceCost | None,
    measured: Measured,
    owners: Mapping[str, str],
    today: date,
) -> ServiceLine:
    """One service's month figures: measured when a source has days for it, else estimated."""
    source = measured.source_of(service)
    days = tuple(measured.service_days(service))
    if estimate is not None:
        team = estimate.team
    else:
        team = team_name(owners[service]) if service in owners else None
    monthly = estimate.monthly if estimate else Decimal(0)
    estimate_currencies = {
        env.currency for env in (estimate.environments if estimate else ()) if not env.error
    }
    daily = condense(days)
    projected_source: str | None
    if source is not None:
        totals = daily.totals
        mtd, mtd_source = month_to_date(totals, today), source
        projected = projected_month(totals, today)
        projected_source = source if projected is not None else None
        if projected is None and estimate is not None:
            projected, projected_source = estimate_projected(monthly, today), ESTIMATE
        currencies = {day.currency for day in days}
    else:
        mtd, mtd_source = estimate_month_to_date(monthly, today), ESTIMATE
        projected, projected_source = estimate_projected(monthly, today), ESTIMATE
        currencies = estimate_currencies
    return ServiceLine(
        service=service,
        team=team,
        estimate=estimate,
        source=source,
        daily=daily,
        month_to_date=mtd,
        month_to_date_source=mtd_source,
        projected=projected,
        projected_source=projected_source,
        currencies=frozenset(currencies or {DEFAULT_PRICES.currency}),
        environments=_environments(estimate, days, source, today),
    )


def figures(lines: Iterable[ServiceLine], today: date, window_days: int) -> Figures:
    """Return the figures of ``lines`` summed: one service's own, or a team's."""
    lines = list(lines)
    measured = [line.daily for line in lines if line.source is not None]
    totals = combined_totals(measured)
    projections = [line.projected for line in lines]
    first, last = window_range(today, window_days)
    return Figures(
        monthly=sum((line.monthly for line in lines), Decimal(0)),
        month_to_date=sum((line.month_to_date for line in lines), Decimal(0)),
        month_to_date_source=joined(line.month_to_date_source for line in lines),
        projected=None
        if any(p is None for p in projections)
        else sum((p for p in projections if p is not None), Decimal(0)),
        projected_source=joined(line.projected_source for line in lines),
        trend=trend(totals, today, window_days) if measured else [],
        trend_source=joined(line.source for line in lines),
        change=change(totals, today, window_days) if measured else None,
        efficiency=efficiency_of(measured, first, last),
        currency=", ".join(sorted({c for line in lines for c in line.currencies})) or "USD",
    )


@dataclass(frozen=True, eq=False)  # compared by identity: the pages cache rows per object
class Computed:
    """Every service's and team's figures for one window: computed once per snapshot.

    Pages filter, sort and format these; nothing per request walks the measured days.
    """

    index: CostIndex
    measured: Measured
    today: date
    window_days: int
    lines: Mapping[str, ServiceLine]  # every service on main or measured, by name
    services: Mapping[str, Figures]
    teams: Mapping[str | None, Figures]  # every service of the team, whatever is shown


def compute(
    index: CostIndex,
    measured: Measured,
    owners: Mapping[str, str],
    today: date,
    window_days: int,
) -> Computed:
    """Every service on main and every measured one (unattributed spend included)."""
    estimates = {service.service: service for service in index.services}
    names = sorted(estimates.keys() | measured.by_service.keys())
    lines = {n: service_line(n, estimates.get(n), measured, owners, today) for n in names}
    members: dict[str | None, list[ServiceLine]] = {}
    for line in lines.values():
        members.setdefault(line.team, []).append(line)
    return Computed(
        index=index,
        measured=measured,
        today=today,
        window_days=window_days,
        lines=lines,
        services={name: figures([line], today, window_days) for name, line in lines.items()},
        teams={team: figures(group, today, window_days) for team, group in members.items()},
    )


def environment_sums(lines: Iterable[ServiceLine]) -> list[EnvironmentFigure]:
    """Every environment of ``lines``, summed over the services (a team's environments)."""
    parts: dict[str, list[EnvironmentFigure]] = {}
    for line in lines:
        for env in line.environments:
            parts.setdefault(env.environment, []).append(env)
    sums = []
    for name, envs in sorted(parts.items()):
        monthly = [env.monthly for env in envs if env.monthly is not None]
        mtd = [env.month_to_date for env in envs if env.month_to_date is not None]
        errors = [env.error for env in envs if env.error]
        sums.append(
            EnvironmentFigure(
                environment=name,
                monthly=sum(monthly, Decimal(0)) if monthly else None,
                month_to_date=sum(mtd, Decimal(0)) if mtd else None,
                source=joined(env.source for env in envs),
                currency=", ".join(sorted({env.currency for env in envs})),
                error=f"{len(errors)} service(s) with errors here" if errors else None,
            )
        )
    return sums
