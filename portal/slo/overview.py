"""One row per SLO: the catalogue's facts joined with Prometheus' numbers, sorted by urgency.

SLOs that Prometheus reports but no known spec defines (rules loaded from elsewhere) are
listed too, marked as such, with what their series say (objective from
``sloth_slo_info``, period from ``slo:time_period:days``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

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
from portal.slo.store import Catalogue, CatalogueEntry
from portal.slo.windows import AlertWindows, builtin_windows


class AlertState(StrEnum):
    """The worst alert firing for an SLO."""

    PAGE = "page"
    TICKET = "ticket"
    NONE = "none"


LEVEL_TEXT = {
    Level.PAGE: "over a page threshold",
    Level.TICKET: "over a ticket threshold",
    Level.ELEVATED: "above 1x, under the alert thresholds",
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
    entry: CatalogueEntry | None
    live: LiveSLO | None
    windows: AlertWindows | None
    burns: tuple[BurnCell, ...]
    alert: AlertState
    pending: bool

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
    def urgency(self) -> tuple[int, float, float, str]:
        """Sort key: paging, ticketing, pending, burning fastest, least budget left."""
        if self.alert is AlertState.PAGE:
            rank = 0
        elif self.alert is AlertState.TICKET:
            rank = 1
        elif self.pending:
            rank = 2
        else:
            rank = 3 if self.has_data else 4
        remaining = self.budget_remaining
        return (rank, -self.pressure, math.inf if remaining is None else remaining, self.sloth_id)


def _windows_for(entry: CatalogueEntry | None, live: LiveSLO | None) -> AlertWindows | None:
    if entry is not None:
        return entry.slo.windows
    period_ms = period_ms_of(live) if live else None
    return builtin_windows().get(period_ms) if period_ms else None


def status_of(entry: CatalogueEntry | None, live: LiveSLO | None) -> SLOStatus:
    """Join one SLO's spec (if known) and live series (if any)."""
    if entry is None and live is None:
        raise ValueError("an SLO needs a spec or live series")
    windows = _windows_for(entry, live)
    objective = entry.objective if entry else (live.objective if live else None)
    conditions = conditions_of(windows) if windows else []
    shown = overview_windows(windows) if windows else list(DEFAULT_WINDOWS)
    burns = []
    for window in shown:
        error = live.sli_errors.get(window) if live else None
        burn = burn_rate(error, objective) if objective is not None else None
        burns.append(
            BurnCell(
                window, burn, level_of(window, burn, conditions), lowest_factor(window, conditions)
            )
        )
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
    )


def statuses(catalogue: Catalogue, snapshot: Snapshot) -> list[SLOStatus]:
    """Every SLO of the catalogue, then those only Prometheus knows, most urgent first."""
    rows = [status_of(entry, snapshot.by_id.get(entry.sloth_id)) for entry in catalogue.entries]
    known = {entry.sloth_id for entry in catalogue.entries}
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
        """How many shown SLOs have their page alert firing."""
        return sum(row.alert is AlertState.PAGE for row in self.rows)

    @property
    def ticketing(self) -> int:
        """How many shown SLOs have (only) their ticket alert firing."""
        return sum(row.alert is AlertState.TICKET for row in self.rows)


def build_overview(
    catalogue: Catalogue,
    snapshot: Snapshot,
    *,
    team: str = "",
    service: str = "",
    prometheus_url: str | None = None,
) -> Overview:
    """Join, sort and filter; the filter choices come from every SLO, not just those shown."""
    every = statuses(catalogue, snapshot)
    return Overview(
        rows=filter_statuses(every, team, service),
        total=len(every),
        teams=sorted({row.team for row in every if row.team}),
        services=sorted({row.service for row in every if row.service}),
        team=team,
        service=service,
        snapshot=snapshot,
        prometheus_url=prometheus_url,
        problems=catalogue.problems,
    )
