"""What the ``/cost`` pages and ``GET /api/cost`` show: rows per team and service, as strings.

Amounts are rounded to cents only here, for people and JSON (strings, so no float ever
touches a Decimal); shares, changes and efficiencies are percentages with one decimal.
Every figure names its source: ``OpenCost`` or ``Prometheus`` (measured) or ``estimate``
(the manifests on main), see :mod:`portal.cost.figures`. ``figure`` is the manifest
estimate of a month (730 hours) beside them, as before measured costs existed.

Filters keep a team (``UNOWNED`` for services without one), a service, and services whose
name or team contains every word of the text query; a team is listed when one of its
services is shown, always with the sum of all its services (a team's cost is not a search
result). The rows are formatted from figures computed once per snapshot
(:class:`portal.cost.figures.Computed`), so a page does not walk the measured days.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from weakref import WeakKeyDictionary

from portal.cost.estimate import share
from portal.cost.figures import (
    Computed,
    EnvironmentFigure,
    Figures,
    ServiceLine,
    environment_sums,
)
from portal.cost.measured import Measured
from portal.cost.model import cents
from portal.cost.rows import (
    Amount,
    Change,
    CostOverview,
    Efficiency,
    EnvironmentRow,
    Figure,
    ServiceRow,
    Sort,
    SourceRow,
    TeamPage,
    TeamRow,
    Trend,
)
from portal.cost.windows import DEFAULT_WINDOW
from portal.integrations.processes import redact_credentials

UNOWNED = "(no owner)"
UNATTRIBUTED = "(unattributed)"
TENTH = Decimal("0.1")


def _percent(value: Decimal | None) -> str | None:
    if value is None:
        return None
    rounded = value.quantize(TENTH, rounding=ROUND_HALF_UP)
    return f"{rounded if rounded else rounded.copy_abs()}"  # no "-0.0"


def _amount(value: Decimal | None, currency: str, source: str | None) -> Amount:
    return Amount(
        amount=None if value is None else f"{cents(value)}", currency=currency, source=source
    )


def _figure(total: Figures, cpu: Decimal, memory: Decimal) -> Figure:
    return Figure(
        monthly=f"{cents(total.monthly)}",
        currency=total.currency,
        cpu_share=_percent(share(cpu, total.monthly)),
        memory_share=_percent(share(memory, total.monthly)),
    )


@dataclass(frozen=True)
class _Parts:
    month_to_date: Amount
    projected: Amount
    trend: Trend
    change: Change
    efficiency: Efficiency


def _parts(total: Figures) -> _Parts:
    measured = total.trend_source
    eff = total.efficiency
    return _Parts(
        month_to_date=_amount(total.month_to_date, total.currency, total.month_to_date_source),
        projected=_amount(total.projected, total.currency, total.projected_source),
        trend=Trend(
            source=measured,
            days=[day.isoformat() for day, _ in total.trend],
            amounts=[f"{cents(amount)}" for _, amount in total.trend],
        ),
        change=Change(percent=_percent(total.change), source=measured),
        efficiency=Efficiency(
            cpu=_percent(None if eff.cpu is None else eff.cpu * 100),
            memory=_percent(None if eff.memory is None else eff.memory * 100),
            source=measured if eff.cpu is not None or eff.memory is not None else None,
        ),
    )


def _environment_row(env: EnvironmentFigure) -> EnvironmentRow:
    return EnvironmentRow(
        environment=env.environment,
        monthly=None if env.monthly is None else f"{cents(env.monthly)}",
        currency=env.currency,
        error=env.error,
        month_to_date=None if env.month_to_date is None else f"{cents(env.month_to_date)}",
        source=env.source,
    )


def _cpu_memory(lines: Sequence[ServiceLine]) -> tuple[Decimal, Decimal]:
    estimates = [line.estimate for line in lines if line.estimate is not None]
    return (
        sum((e.cpu for e in estimates), Decimal(0)),
        sum((e.memory for e in estimates), Decimal(0)),
    )


def _service_row(line: ServiceLine, total: Figures) -> ServiceRow:
    parts = _parts(total)
    return ServiceRow(
        service=line.service,
        team=line.team,
        on_main=line.estimate is not None,
        figure=_figure(total, *_cpu_memory([line])),
        environments=[_environment_row(env) for env in line.environments],
        errors=line.estimate.errors if line.estimate else [],
        month_to_date=parts.month_to_date,
        projected=parts.projected,
        trend=parts.trend,
        change=parts.change,
        efficiency=parts.efficiency,
    )


def _team_row(team: str | None, lines: Sequence[ServiceLine], total: Figures) -> TeamRow:
    parts = _parts(total)
    return TeamRow(
        team=team,
        services=[line.service for line in lines],
        figure=_figure(total, *_cpu_memory(lines)),
        month_to_date=parts.month_to_date,
        projected=parts.projected,
        trend=parts.trend,
        change=parts.change,
        efficiency=parts.efficiency,
    )


def _sorted(items: list[tuple[str, Figures]], sort: Sort, desc: bool) -> list[str]:
    """Names in the sort's order; figures that are unknown (None) always come last."""
    by_name = sorted(items, key=lambda item: (item[0] == "", item[0]))
    if sort == "name":
        return [name for name, _ in (by_name[::-1] if desc else by_name)]
    keys: dict[str, Callable[[Figures], Decimal | None]] = {
        # The default direction puts what needs attention first: the most expensive, the
        # fastest growing, the least efficient (the most over-requested).
        "cost": lambda f: None if f.projected is None else -f.projected,
        "change": lambda f: None if f.change is None else -f.change,
        "efficiency": lambda f: (
            f.efficiency.cpu if f.efficiency.cpu is not None else f.efficiency.memory
        ),
    }
    key = keys[sort]
    known = [(name, key(total)) for name, total in by_name if key(total) is not None]
    unknown = [name for name, total in by_name if key(total) is None]
    known.sort(key=lambda item: item[1] or Decimal(0), reverse=desc)
    return [name for name, _ in known] + unknown


def _sources(measured: Measured) -> list[SourceRow]:
    # A source URL may carry a token as its user part: never shown, nor in its error.
    return [
        SourceRow(
            name=s.name,
            url=redact_credentials(s.url),
            days=s.days,
            error=None if s.error is None else redact_credentials(s.error),
        )
        for s in measured.statuses
    ]


def _matches(line: ServiceLine, team: str, service: str, q: str) -> bool:
    words = q.lower().split()
    haystack = f"{line.service or UNATTRIBUTED} {line.team or UNOWNED}".lower()
    return (
        (not team or (line.team or UNOWNED) == team)
        and (not service or line.service == service)
        and all(word in haystack for word in words)
    )


def _members(computed: Computed, team: str | None) -> list[ServiceLine]:
    members = [line for line in computed.lines.values() if line.team == team]
    return sorted(members, key=lambda line: (line.service == "", line.service))


@dataclass(frozen=True)
class _Rows:
    services: dict[str, ServiceRow]
    teams: dict[str | None, TeamRow]


# Rows do not depend on filters or sorting: formatted once per ``Computed`` (which the
# runtime keeps until its data changes), then each page only picks and orders them.
_FORMATTED: WeakKeyDictionary[Computed, _Rows] = WeakKeyDictionary()
_FORMATTING = threading.Lock()


def _rows(computed: Computed) -> _Rows:
    with _FORMATTING:
        found = _FORMATTED.get(computed)
    if found is None:
        found = _Rows(
            services={
                name: _service_row(line, computed.services[name])
                for name, line in computed.lines.items()
            },
            teams={
                team: _team_row(team, _members(computed, team), total)
                for team, total in computed.teams.items()
            },
        )
        with _FORMATTING:
            _FORMATTED[computed] = found
    return found


def cost_overview(
    computed: Computed,
    *,
    window: str = DEFAULT_WINDOW,
    team: str = "",
    service: str = "",
    q: str = "",
    sort: Sort = "name",
    desc: bool = False,
) -> CostOverview:
    """Build the page's rows from ``computed`` (named ``window``), filtered and sorted.

    A team is listed when one of its services is shown, with the sum of all its services.
    """
    lines = computed.lines
    shown = [name for name, line in lines.items() if _matches(line, team, service, q)]
    order = _sorted([(name, computed.services[name]) for name in shown], sort, desc)
    teams = {lines[name].team for name in shown}
    # The unowned group sorts by the name "" but is listed as such: map it back.
    team_order = _sorted([(t or "", computed.teams[t]) for t in teams], sort, desc)
    index = computed.index
    rows = _rows(computed)
    return CostOverview(
        commit=index.commit,
        today=computed.today.isoformat(),
        window=window,
        team=team,
        service=service,
        q=q,
        sort=sort,
        desc=desc,
        teams=[rows.teams[key or None] for key in team_order],
        services=[rows.services[name] for name in order],
        all_teams=[
            t or UNOWNED for t in sorted(computed.teams, key=lambda t: (t is None, t or ""))
        ],
        sources=_sources(computed.measured),
        problems=list(index.problems),
    )


def team_page(computed: Computed, team: str, window: str = DEFAULT_WINDOW) -> TeamPage | None:
    """One named team's page; None when no service on main or measured belongs to it."""
    lines = _members(computed, team)
    if not lines:
        return None
    return TeamPage(
        team=team,
        today=computed.today.isoformat(),
        window=window,
        row=_rows(computed).teams[team],
        environments=[_environment_row(env) for env in environment_sums(lines)],
        services=[_rows(computed).services[line.service] for line in lines],
        sources=_sources(computed.measured),
        problems=list(computed.index.problems),
    )
