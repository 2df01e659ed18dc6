"""The ``/cost`` and ``/cost/teams/{team}`` pages and ``GET /api/cost``.

Measured costs (OpenCost, then Prometheus) where a source has days for a service, the
manifest estimate of main elsewhere; each figure says which. A source that fails is named
with its error on the page and its services fall back to the next source or the estimate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from portal.api_errors import error_responses
from portal.cost.overview import cost_overview, team_page
from portal.cost.rows import SORTS, CostOverview, Sort, Trend
from portal.cost.runtime import CostRuntime
from portal.cost.windows import DEFAULT_WINDOW, WINDOWS, Window, WindowError, parse_window
from portal.deps import from_app_state
from portal.ui.render import error_page, page

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/cost", tags=["cost"])

cost_runtime = from_app_state("cost", CostRuntime)
CostDep = Annotated[CostRuntime, Depends(cost_runtime)]


def trend_charts(trends: Mapping[str, Trend]) -> Markup:
    """Return the sparklines' data as JSON safe inside ``<script type="application/json">``.

    Amounts stay strings of cents: the script turns them into numbers only to draw.
    """
    data = {key: {"days": t.days, "amounts": t.amounts} for key, t in trends.items() if t.days}
    text = json.dumps({"charts": data}, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 (escaped above; JSON, not HTML)


def _page_query(window: str, sort: str) -> tuple[int, Sort] | str:
    """Return the window's days and the sort key, or the message naming the bad field."""
    try:
        days = parse_window(window)
    except WindowError as error:
        return str(error)
    if sort not in SORTS:
        return f"sort: must be one of {', '.join(SORTS)}, not {sort!r}"
    return days, sort  # type: ignore[return-value]  # checked against SORTS just above


def _context(overview: CostOverview) -> dict[str, object]:
    trends: dict[str, Trend] = {f"team-{i}": row.trend for i, row in enumerate(overview.teams)}
    trends |= {f"service-{i}": row.trend for i, row in enumerate(overview.services)}
    return {
        "active": "cost",
        "overview": overview,
        "charts": trend_charts(trends),
        "windows": list(WINDOWS),
    }


@router.get("/cost", response_class=HTMLResponse)
def cost_page(
    request: Request,
    runtime: CostDep,
    team: str = "",
    q: str = "",
    window: str = DEFAULT_WINDOW,
    sort: str = "name",
    desc: bool = False,
) -> HTMLResponse:
    """Teams and services: month to date, projection, trend, change, efficiency, sources."""
    checked = _page_query(window, sort)
    if isinstance(checked, str):
        return error_page(request, "Invalid filter", checked, 422)
    days, key = checked
    overview = cost_overview(
        runtime.computed(days), window=window, team=team, q=q, sort=key, desc=desc
    )
    return page(request, "cost/overview.html", _context(overview), fragment="results")


@router.get("/cost/teams/{team:path}", response_class=HTMLResponse)
def cost_team_page(
    request: Request, runtime: CostDep, team: str, window: str = DEFAULT_WINDOW
) -> HTMLResponse:
    """One team: its services summed, per environment, and its daily trend.

    ``team`` is a path: a team outside the default namespace is named ``namespace/team``.
    """
    checked = _page_query(window, "name")
    if isinstance(checked, str):
        return error_page(request, "Invalid filter", checked, 422)
    found = team_page(runtime.computed(checked[0]), team, window)
    if found is None:
        raise HTTPException(404, f"No service on GitOps main or measured belongs to team {team}.")
    trends = {"team": found.row.trend} | {
        f"service-{i}": row.trend for i, row in enumerate(found.services)
    }
    context = {
        "active": "cost",
        "team_page": found,
        "charts": trend_charts(trends),
        "windows": list(WINDOWS),
    }
    return page(request, "cost/team.html", context)


@api_router.get("", response_model=CostOverview, responses=error_responses(422))
def cost_api(
    runtime: CostDep,
    team: str = "",
    service: str = "",
    q: str = "",
    window: Window = DEFAULT_WINDOW,
    sort: Sort = "name",
    desc: bool = False,
) -> CostOverview:
    """Return the page's figures: amounts in cents and percentages, as strings."""
    return cost_overview(
        runtime.computed(WINDOWS[window]),
        window=window,
        team=team,
        service=service,
        q=q,
        sort=sort,
        desc=desc,
    )
