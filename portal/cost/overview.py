"""What the ``/cost`` page and ``GET /api/cost`` show: rows per team and service, as strings.

Amounts are rounded to cents only here, for people and JSON (strings, so no float ever
touches a Decimal); shares are the CPU and memory parts of a figure, in percent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

from portal.cost.estimate import SOURCE, CostIndex, ServiceCost, TeamCost, share
from portal.cost.model import cents

Sort = Literal["name", "cost"]
UNOWNED = "(no owner)"


class Figure(BaseModel):
    """A monthly amount with its CPU / memory shares and where it comes from."""

    monthly: str
    currency: str
    cpu_share: str | None
    memory_share: str | None
    source: str = SOURCE


class EnvironmentRow(BaseModel):
    """One environment of a service."""

    environment: str
    monthly: str | None
    currency: str
    error: str | None


class ServiceRow(BaseModel):
    """One service: its figure, team and environments, and why a part is missing."""

    service: str
    team: str | None
    figure: Figure
    environments: list[EnvironmentRow]
    errors: list[str]


class TeamRow(BaseModel):
    """One team: the sum of its services."""

    team: str | None
    services: list[str]
    figure: Figure


class CostOverview(BaseModel):
    """The whole page: teams, services, filters and problems."""

    commit: str | None
    team: str
    sort: Sort
    teams: list[TeamRow]
    services: list[ServiceRow]
    all_teams: list[str]
    problems: list[str]


def _percent(value: Decimal | None) -> str | None:
    return None if value is None else f"{value}"


def _figure(item: ServiceCost | TeamCost, currency: str) -> Figure:
    return Figure(
        monthly=f"{cents(item.monthly)}",
        currency=currency,
        cpu_share=_percent(share(item.cpu, item.monthly)),
        memory_share=_percent(share(item.memory, item.monthly)),
    )


def _currency(service: ServiceCost) -> str:
    currencies = {env.currency for env in service.environments if env.error is None}
    return ", ".join(sorted(currencies)) or "USD"


def _service_row(service: ServiceCost) -> ServiceRow:
    return ServiceRow(
        service=service.service,
        team=service.team,
        figure=_figure(service, _currency(service)),
        environments=[
            EnvironmentRow(
                environment=env.environment,
                monthly=None if env.error and not env.monthly else f"{cents(env.monthly)}",
                currency=env.currency,
                error=env.error,
            )
            for env in service.environments
        ],
        errors=service.errors,
    )


def cost_overview(index: CostIndex, team: str = "", sort: Sort = "name") -> CostOverview:
    """Build the page's rows, keeping only ``team`` (a team name, or ``UNOWNED``) if given."""
    teams = index.teams()
    if team:
        teams = [row for row in teams if (row.team or UNOWNED) == team]
    services = [service for row in teams for service in row.services]

    if sort == "cost":
        # The most expensive first; names break ties so the order is stable.
        teams.sort(key=lambda row: (-row.monthly, row.team or ""))
        services.sort(key=lambda service: (-service.monthly, service.service))
    else:
        services.sort(key=lambda service: service.service)
    return CostOverview(
        commit=index.commit,
        team=team,
        sort=sort,
        teams=[
            TeamRow(
                team=row.team,
                services=[s.service for s in row.services],
                figure=_figure(row, ", ".join(sorted({_currency(s) for s in row.services}))),
            )
            for row in teams
        ],
        services=[_service_row(service) for service in services],
        all_teams=[row.team or UNOWNED for row in index.teams()],
        problems=list(index.problems),
    )
