"""One row per SLO: the SLO index's facts joined with Prometheus' numbers, sorted by urgency.

SLOs that Prometheus reports but no known spec defines (rules loaded from elsewhere) are
listed too, marked as such, with what their series say (objective from
``sloth_slo_info``, period from ``slo:time_period:days``). Each row's words and colours
come from one :class:`~portal.slo.verdict.Judgement` (``SLOStatus.judgement``), which the
detail page and a Component's SLO section show too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from portal.slo.burn import (
    DEFAULT_WINDOWS,
    Condition,
    Level,
    LiveSLO,
    Severity,
    Snapshot,
    burn_rate,
    conditions_of,
    error_budget,
    level_of,
    lowest_factor,
    overview_windows,
    period_ms_of,
    period_window,
)
from portal.slo.compiler.scaled_windows import windows_for_period
from portal.slo.compiler.windows import AlertWindows, builtin_windows
from portal.slo.coverage import Coverage, coverage_of
from portal.slo.store import IndexedSLO, SLOIndex
from portal.slo.verdict import Judgement, Verdict, judge, met_conditions


class AlertState(StrEnum):
    """The worst alert Prometheus fires for an SLO (``ALERTS``; the API's ``alert``)."""

    PAGE = "page"
    TICKET = "ticket"
    NONE = "none"


LEVEL_TEXT = {
    Level.PAGE: "a page condition is met: both its windows over the threshold",
    Level.TICKET: "a ticket condition is met: both its windows over the threshold",
    Level.ELEVATED: "above 1x, no alert condition met",
    Level.OK: "under 1x",
    Level.NO_DATA: "no data",
}
"""Each level in words, for screen readers (the colour alone says nothing to them)."""


@dataclass(frozen=True, slots=True)
class BurnCell:
    """The burn rate over one window and how it compares with the alert thresholds."""

    window: str
    burn: float | None
    level: Level
    threshold: float | None

    @property
    def level_text(self) -> str:
        """The level in words."""
        return LEVEL_TEXT[self.level]


@dataclass(frozen=True)
class SLOStatus:
    """Everything the overview shows about one SLO."""

    sloth_id: str
    service: str
    name: str
    team: str | None
    objective: float | None
    period_ms: int | None
    entry: IndexedSLO | None
    live: LiveSLO | None
    windows: AlertWindows | None
    burns: tuple[BurnCell, ...]
    alert: AlertState
    pending: bool
    met: tuple[Condition, ...] = ()  # the conditions whose two windows burn over the factor

    @property
    def period(self) -> str | None:
        """The period as Prometheus prints it, when known."""
        return period_window(self.period_ms) if self.period_ms else None

    @property
    def conditions(self) -> list[Condition]:
        """The alert conditions of the SLO's period (empty when the period is unknown)."""
        return conditions_of(self.windows) if self.windows else []

    @property
    def sli(self) -> float | None:
        """The SLI (good ratio) over the whole period.

        From the period's error ratio when fetched, else from the budget remaining, which
        Sloth records as ``1 - period error ratio / error budget``.
        """
        if self.live is None or self.period is None:
            return None
        error = self.live.sli_errors.get(self.period)
        if error is None and self.live.budget_remaining is not None and self.objective:
            error = (1 - self.live.budget_remaining) * error_budget(self.objective)
        return None if error is None else 1 - error

    @property
    def budget_remaining(self) -> float | None:
        """The share of the period's error budget left (1 = untouched, below 0 = overspent)."""
        return self.live.budget_remaining if self.live else None

    @property
    def current_burn(self) -> float | None:
        """Sloth's current burn rate (the shortest window)."""
        return self.live.current_burn if self.live else None

    @property
    def has_data(self) -> bool:
        """True when Prometheus has series for this SLO."""
        return self.live is not None and (
            self.live.current_burn is not None or bool(self.live.sli_errors)
        )

    @property
    def time_to_exhaustion(self) -> float | None:
        """Seconds a whole error budget lasts at the current burn rate (period / burn)."""
        burn = self.current_burn
        if burn is None or burn <= 0 or not self.period_ms:
            return None
        return self.period_ms / 1000 / burn

    @property
    def pressure(self) -> float:
        """The highest burn rate relative to the lowest alert threshold of its window."""
        ratios = [
            cell.burn / cell.threshold
            for cell in self.burns
            if cell.burn is not None and cell.threshold
        ]
        return max(ratios, default=-math.inf)

    @property
    def coverage(self) -> Coverage:
        """How much of the period has data, and how much a verdict needs."""
        seconds = self.live.coverage_seconds if self.live else None
        return coverage_of(seconds, self.windows, self.period_ms)

    @cached_property
    def judgement(self) -> Judgement:
        """The row's status: its verdict, words and colour (see :mod:`portal.slo.verdict`)."""
        return judge(
            alerts=self.live.alerts if self.live else (),
            met=self.met,
            has_data=self.has_data,
            coverage=self.coverage,
            sli=self.sli,
            objective=self.objective,
            budget_remaining=self.budget_remaining,
        )

    @property
    def urgency(self) -> tuple[int, float, float, str]:
        """Sort key: paging, ticketing, pending, burning fastest, least budget left."""
        remaining = self.budget_remaining
        return (
            self.judgement.rank,
            -self.pressure,
            math.inf if remaining is None else remaining,
            self.sloth_id,
        )


def _windows_for(entry: IndexedSLO | None, live: LiveSLO | None) -> AlertWindows | None:
    if entry is not None:
        return entry.slo.windows
    period_ms = period_ms_of(live) if live else None
    if not period_ms:
        return None
    try:  # a period without a windows file gets Pyrra's scaled windows, as the compiler does
        return windows_for_period(builtin_windows(), period_ms)
    except ValueError:  # too short to scale: shown without alert conditions
        return None


def status_of(entry: IndexedSLO | None, live: LiveSLO | None) -> SLOStatus:
    """Join one SLO's spec (if known) and live series (if any)."""
    if entry is None and live is None:
        raise ValueError("an SLO needs a spec or live series")
    windows = _windows_for(entry, live)
    objective = entry.objective if entry else (live.objective if live else None)
    conditions = conditions_of(windows) if windows else []
    shown = overview_windows(windows) if windows else list(DEFAULT_WINDOWS)
    errors = live.sli_errors if live is not None and objective is not None else {}
    rates = {window: burn_rate(error, objective) for window, error in errors.items() if objective}
    met = met_conditions(conditions, rates)
    burns = [
        BurnCell(
            window,
            rates.get(window),
            level_of(window, rates.get(window), met),
            lowest_factor(window, conditions),
        )
        for window in shown
    ]
    if live is not None and live.firing(Severity.PAGE):
        alert = AlertState.PAGE
    elif live is not None and live.firing(Severity.TICKET):
        alert = AlertState.TICKET
    else:
        alert = AlertState.NONE
    if entry is not None:
        sloth_id, service, name, team = entry.sloth_id, entry.service, entry.name, entry.team
    else:
        assert live is not None
        sloth_id, service, name, team = live.sloth_id, live.service, live.slo, None
    return SLOStatus(
        sloth_id=sloth_id,
        service=service,
        name=name,
        team=team,
        objective=objective,
        period_ms=windows.period_ms if windows else (period_ms_of(live) if live else None),
        entry=entry,
        live=live,
        windows=windows,
        burns=tuple(burns),
        alert=alert,
        pending=live.pending() if live else False,
        met=met,
    )


def statuses(slo_index: SLOIndex, snapshot: Snapshot) -> list[SLOStatus]:
    """Every SLO of the index, then those only Prometheus knows, most urgent first."""
    rows = [status_of(entry, snapshot.by_id.get(entry.sloth_id)) for entry in slo_index.entries]
    known = {entry.sloth_id for entry in slo_index.entries}
    rows += [status_of(None, live) for key, live in snapshot.by_id.items() if key not in known]
    return sorted(rows, key=lambda row: row.urgency)


def filter_statuses(
    rows: Iterable[SLOStatus], team: str = "", service: str = ""
) -> list[SLOStatus]:
    """Keep the rows of one team and/or one service (empty: no filter)."""
    return [
        row
        for row in rows
        if (not team or row.team == team) and (not service or row.service == service)
    ]


@dataclass(frozen=True)
class Overview:
    """The overview page: the rows shown, the filter choices and the state of Prometheus."""

    rows: Sequence[SLOStatus]
    total: int
    teams: Sequence[str]
    services: Sequence[str]
    team: str
    service: str
    snapshot: Snapshot
    prometheus_url: str | None
    problems: Sequence[str]

    @property
    def paging(self) -> int:
        """How many shown SLOs page (alert firing or condition met)."""
        return sum(row.judgement.verdict is Verdict.PAGE for row in self.rows)

    @property
    def ticketing(self) -> int:
        """How many shown SLOs ticket (and do not page)."""
        return sum(row.judgement.verdict is Verdict.TICKET for row in self.rows)

    @property
    def young(self) -> int:
        """How many shown SLOs have too little data for a verdict about their period."""
        return sum(row.judgement.period is Verdict.NOT_ENOUGH_DATA for row in self.rows)


def build_overview(
    slo_index: SLOIndex,
    snapshot: Snapshot,
    *,
    team: str = "",
    service: str = "",
    prometheus_url: str | None = None,
) -> Overview:
    """Join, sort and filter; the filter choices come from every SLO, not just those shown."""
    every = statuses(slo_index, snapshot)
    return Overview(
        rows=filter_statuses(every, team, service),
        total=len(every),
        teams=sorted({row.team for row in every if row.team}),
        services=sorted({row.service for row in every if row.service}),
        team=team,
        service=service,
        snapshot=snapshot,
        prometheus_url=prometheus_url,
        problems=slo_index.problems,
    )
