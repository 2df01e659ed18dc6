"""SLO pages: the overview, one SLO's detail, and the preview of a draft SLO in a change."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from portal.catalog.models import Entity
from portal.db import SessionDep
from portal.deps import from_app_state
from portal.integrations.kubernetes import Finding
from portal.slo.budget import BudgetPolicyError, evaluate_budget, load_policies
from portal.slo.charts import DEFAULT_RANGE, RANGES, charts_json
from portal.slo.overview import SLOStatus
from portal.slo.present import FORMATS
from portal.slo.preview import preview_for_change
from portal.slo.runtime import REFRESH_SECONDS, SLORuntime, lowest_budget
from portal.ui.render import page

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/slos", include_in_schema=False)


slo_runtime = from_app_state("slo", SLORuntime)
SloDep = Annotated[SLORuntime, Depends(slo_runtime)]


def _context(**values: Any) -> dict[str, Any]:
    return {"active": "slos", "fmt": FORMATS, "refresh": REFRESH_SECONDS, **values}


@router.get("", response_class=HTMLResponse)
def slo_overview(request: Request, runtime: SloDep, team: str = "", service: str = "") -> Response:
    """List every SLO with its budget, burn rates and alerts; htmx refreshes the table."""
    overview = runtime.overview(team=team, service=service)
    return page(request, "slo/overview.html", _context(overview=overview), fragment="table")


@router.get("/preview/{change_id}", response_class=HTMLResponse)
def slo_preview(request: Request, session: SessionDep, runtime: SloDep, change_id: str) -> Response:
    """Preview the SLO spec of a change under review: tiles, alert thresholds and rules."""
    if runtime.gitops is None:
        raise HTTPException(404, "This portal has no GitOps repository to read changes from.")
    preview = preview_for_change(session, runtime.gitops(), change_id)
    if preview is None:
        raise HTTPException(404, f"There is no change {change_id}.")
    return page(request, "slo/preview.html", _context(preview=preview))


@router.get("/{sloth_id}", response_class=HTMLResponse)
def slo_detail(
    request: Request, runtime: SloDep, sloth_id: str, range: str = DEFAULT_RANGE
) -> Response:
    """One SLO: tiles, alert conditions, burn and budget charts, generated rules and spec."""
    detail = runtime.detail(sloth_id, range)
    if detail is None:
        raise HTTPException(404, f"There is no SLO {sloth_id} in the specs or in Prometheus.")
    context = _context(
        detail=detail,
        status=detail.status,
        ranges=[*RANGES, "period"],
        charts=charts_json(detail.charts),
        snapshot=runtime.snapshot(),
        prometheus_url=runtime.prometheus.url if runtime.prometheus else None,
    )
    return page(request, "slo/detail.html", context, fragment="live")


@dataclass(frozen=True)
class EntitySLOs:
    """The SLO section of a catalog Component's page."""

    rows: list[SLOStatus]
    policy: Finding | None = None  # the error-budget policy's verdict on the service

    @property
    def fmt(self) -> Any:
        """The number formats of the SLO pages."""
        return FORMATS


def entity_slos(runtime: SLORuntime, entity: Entity) -> EntitySLOs | None:
    """Return the SLOs of a Component (named like its service); None for other kinds."""
    if entity.kind_key != "component":
        return None
    rows = runtime.for_service(entity.name, wait=False)
    remaining = lowest_budget(rows)
    try:
        policies = load_policies(runtime.settings.error_budget_dir)
    except BudgetPolicyError as exc:
        logger.warning("error-budget policies unreadable: %s", exc)
        policies = []
    verdict = evaluate_budget(policies, entity.name, remaining)
    return EntitySLOs(rows, verdict[0] if verdict else None)
