"""JSON API of the SLO pages: the same rows and numbers, for scripts and tests."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from portal.api_errors import error_responses
from portal.slo.overview import SLOStatus
from portal.slo.routes import slo_runtime

router = APIRouter(prefix="/api/slos", tags=["slos"])


class PrometheusState(BaseModel):
    """Which Prometheus the numbers come from, and whether it answered."""

    url: str | None
    available: bool
    error: str | None


class SLOOut(BaseModel):
    """One SLO: ratios are 0-1, burn rates are multiples of "exactly on budget"."""

    sloth_id: str
    service: str
    slo: str
    team: str | None
    objective: float | None
    period: str | None
    has_spec: bool
    has_data: bool
    sli: float | None
    budget_remaining: float | None
    current_burn: float | None
    burn: dict[str, float | None]
    alert: str
    pending: bool
    time_to_exhaustion_seconds: float | None
    url: str


class SLOList(BaseModel):
    """Every SLO, most urgent first."""

    prometheus: PrometheusState
    items: list[SLOOut]


def slo_out(row: SLOStatus) -> SLOOut:
    """Convert a row of the overview into its JSON form."""
    return SLOOut(
        sloth_id=row.sloth_id,
        service=row.service,
        slo=row.name,
        team=row.team,
        objective=row.objective,
        period=row.period,
        has_spec=row.entry is not None,
        has_data=row.has_data,
        sli=row.sli,
        budget_remaining=row.budget_remaining,
        current_burn=row.current_burn,
        burn={cell.window: cell.burn for cell in row.burns},
        alert=row.alert.value,
        pending=row.pending,
        time_to_exhaustion_seconds=row.time_to_exhaustion,
        url=f"/slos/{row.sloth_id}",
    )


@router.get("", response_model=SLOList, responses=error_responses(422))
def api_list_slos(request: Request, team: str = "", service: str = "") -> SLOList:
    """List the SLOs (filtered by team and service) with their live numbers."""
    overview = slo_runtime(request).overview(team=team, service=service)
    snapshot = overview.snapshot
    state = PrometheusState(
        url=overview.prometheus_url, available=snapshot.available, error=snapshot.error
    )
    return SLOList(prometheus=state, items=[slo_out(row) for row in overview.rows])


@router.get(
    "/{sloth_id}",
    response_model=SLOOut,
    responses=error_responses(422, described={404: "No such SLO"}),
)
def api_get_slo(request: Request, sloth_id: str) -> SLOOut:
    """Return one SLO with its live numbers."""
    status = slo_runtime(request).status(sloth_id)
    if status is None:
        raise HTTPException(404, f"There is no SLO {sloth_id}.")
    return slo_out(status)
