"""The ``/cost`` page and ``GET /api/cost``: the estimate of main, per team and service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from portal.api_errors import error_responses
from portal.cost.estimate import CostRuntime
from portal.cost.overview import CostOverview, Sort, cost_overview
from portal.deps import from_app_state
from portal.ui.render import page

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/cost", tags=["cost"])

cost_runtime = from_app_state("cost", CostRuntime)
CostDep = Annotated[CostRuntime, Depends(cost_runtime)]


@router.get("/cost", response_class=HTMLResponse)
def cost_page(
    request: Request, runtime: CostDep, team: str = "", sort: Sort = "name"
) -> HTMLResponse:
    """Monthly estimates per team and service, sortable by name or cost, filtered by team."""
    overview = cost_overview(runtime.index(), team=team, sort=sort)
    return page(request, "cost/overview.html", {"active": "cost", "overview": overview})


@api_router.get("", response_model=CostOverview, responses=error_responses(422))
def cost_api(runtime: CostDep, team: str = "", sort: Sort = "name") -> CostOverview:
    """Return the page's figures: amounts in cents and shares in percent, as strings."""
    return cost_overview(runtime.index(), team=team, sort=sort)
