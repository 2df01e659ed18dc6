"""The rows the ``/cost`` pages and ``GET /api/cost`` show: amounts as strings of cents.

Pydantic models, so the API documents them and no float ever touches a Decimal; built by
:mod:`portal.cost.overview` from the figures of :mod:`portal.cost.figures`.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel

from portal.cost.estimate import SOURCE
from portal.cost.windows import DEFAULT_WINDOW

Sort = Literal["name", "cost", "change", "efficiency"]
SORTS: tuple[str, ...] = get_args(Sort)


class Figure(BaseModel):
    """The manifest estimate of a month with its CPU / memory shares."""

    monthly: str
    currency: str
    cpu_share: str | None
    memory_share: str | None
    source: str = SOURCE


class Amount(BaseModel):
    """An amount in cents (a string) and where it comes from; None when unknown."""

    amount: str | None
    currency: str
    source: str | None


class Trend(BaseModel):
    """Cost per complete day of the window, oldest first; empty when nothing was measured."""

    source: str | None
    days: list[str]
    amounts: list[str]


class Change(BaseModel):
    """The window against the previous one, in percent; None without a previous window."""

    percent: str | None
    source: str | None


class Efficiency(BaseModel):
    """Usage as a percentage of the request over the window, CPU and memory."""

    cpu: str | None
    memory: str | None
    source: str | None


class EnvironmentRow(BaseModel):
    """One environment of a service or team: the estimate of a month and month to date."""

    environment: str
    monthly: str | None
    currency: str
    error: str | None
    month_to_date: str | None = None
    source: str | None = None


class ServiceRow(BaseModel):
    """One service: its figures, team and environments, and why a part is missing."""

    service: str
    team: str | None
    on_main: bool  # False: measured only, no folder on main to estimate
    figure: Figure
    month_to_date: Amount
    projected: Amount
    trend: Trend
    change: Change
    efficiency: Efficiency
    environments: list[EnvironmentRow]
    errors: list[str]


class TeamRow(BaseModel):
    """One team: the sum of its services."""

    team: str | None
    services: list[str]
    figure: Figure
    month_to_date: Amount
    projected: Amount
    trend: Trend
    change: Change
    efficiency: Efficiency


class SourceRow(BaseModel):
    """A measured source as asked: how many workload-days it gave, or its error."""

    name: str
    url: str
    days: int
    error: str | None


class CostOverview(BaseModel):
    """The whole page: teams, services, filters, sources and problems."""

    commit: str | None
    today: str
    window: str
    team: str
    service: str
    q: str
    sort: Sort
    desc: bool
    teams: list[TeamRow]
    services: list[ServiceRow]
    all_teams: list[str]
    sources: list[SourceRow]
    problems: list[str]

    def params(self, **override: str) -> dict[str, str]:
        """Return the page's non-default query parameters, with ``override`` applied."""
        values = {
            "q": self.q,
            "team": self.team,
            "window": "" if self.window == DEFAULT_WINDOW else self.window,
            "sort": "" if self.sort == "name" else self.sort,
            "desc": "1" if self.desc else "",
        }
        values.update(override)
        return {key: value for key, value in values.items() if value}


class TeamPage(BaseModel):
    """One team: its sum, its environments summed, its services."""

    team: str
    today: str
    window: str
    row: TeamRow
    environments: list[EnvironmentRow]
    services: list[ServiceRow]
    sources: list[SourceRow]
    problems: list[str]
