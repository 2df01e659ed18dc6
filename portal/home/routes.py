"""The home page at ``/``: a signed-in person's panels, or what the portal is for visitors."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from portal.auth.identity import Identity
from portal.db import SessionDep
from portal.deps import SettingsDep
from portal.home.alerts import team_alerts
from portal.home.summary import build_summary
from portal.review.routes import ago
from portal.slo.routes import SloDep
from portal.ui.render import page, wants_fragment

router = APIRouter(include_in_schema=False)

ALERTS_TARGET = "home-alerts"
"""The id of the SLO panel; htmx names it in ``HX-Target`` when it asks for the panel alone."""


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, settings: SettingsDep, slo: SloDep) -> Response:
    """Show the home page; the SLO panel alone (waiting for Prometheus) when htmx asks for it."""
    identity: Identity | None = request.state.identity
    panel_only = wants_fragment(request) and request.headers.get("HX-Target") == ALERTS_TARGET
    if identity is None:
        context: dict[str, Any] = {"active": "home", "summary": None, "alerts": None}
        return page(request, "home/home.html", context, fragment="alerts" if panel_only else None)
    alerts = team_alerts(session, slo, identity, wait=panel_only)
    if panel_only:
        return page(request, "home/home.html", {"alerts": alerts}, fragment="alerts")
    summary = build_summary(session, identity, settings.admin_group)
    context = {"active": "home", "summary": summary, "alerts": alerts, "ago": ago}
    return page(request, "home/home.html", context)
