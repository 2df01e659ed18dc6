"""The HTML page and the manual check: full pages, or the check's fragment for htmx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from . import metrics
from .assessment import UNIT, Verdict
from .check_form import PLAUSIBLE_MAX, CheckInput, parse_check
from .dependencies import MonitorDep, submitted
from .monitor import Monitor
from .serialize import ATTRIBUTION
from .settings import VERSION
from .snapshot import Snapshot

HERE = Path(__file__).parent
router = APIRouter()


def age_text(seconds: float | None) -> str:
    """Say how old the data is, as a person would."""
    if seconds is None:
        return "never"
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{round(seconds / 60)} minutes ago"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} hours ago"
    return f"{round(seconds / 86400)} days ago"


def amount(value: float | None) -> str:
    """Format a concentration for reading: 2 significant figures at most, '–' when missing."""
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["amount"] = amount


def _wants_fragment(request: Request) -> bool:
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def _page(
    request: Request,
    monitor: Monitor,
    snapshot: Snapshot | None,
    check: CheckInput | None = None,
    verdict: Verdict | None = None,
) -> HTMLResponse:
    settings = monitor.settings
    if check is None:
        prefill = {}
        for reading in snapshot.readings if snapshot else ():
            prefill[reading.pollutant] = "" if reading.value is None else f"{reading.value:.1f}"
        check = CheckInput(prefill, {}, {})
    context: dict[str, Any] = {
        "settings": settings,
        "snapshot": snapshot,
        "age": age_text(monitor.age_seconds()),
        "fresh": monitor.is_fresh(),
        "error": monitor.last_error,
        "check": check,
        "check_verdict": verdict,
        "plausible_max": PLAUSIBLE_MAX,
        "unit": UNIT,
        "attribution": ATTRIBUTION,
        "version": VERSION,
    }
    status = 200 if snapshot is not None else 503
    return templates.TemplateResponse(request, "index.html", context, status_code=status)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, monitor: MonitorDep) -> HTMLResponse:
    """Render the page: verdict, pollutants, 10-day charts, forecast and the manual check."""
    return _page(request, monitor, await monitor.current())


@router.post("/check", response_class=HTMLResponse)
async def check_page(request: Request, monitor: MonitorDep) -> HTMLResponse:
    """Answer the manual check: the verdict fragment for htmx, else the whole page."""
    snapshot = await monitor.current()  # the check uses the model of the current data
    check = parse_check(await submitted(request), monitor.settings.pollutants)
    verdict = monitor.check(check.values) if check.valid else None
    metrics.MANUAL_CHECKS.labels(verdict.level.value if verdict else "invalid").inc()
    if _wants_fragment(request):
        # 200 even with field messages: they are the answer htmx swaps in (a 4xx would
        # not be swapped, and browsers log it as a failed load).
        context = {"check": check, "check_verdict": verdict, "settings": monitor.settings}
        response = templates.TemplateResponse(request, "_check_fragment.html", context)
    else:
        response = _page(request, monitor, snapshot, check, verdict)
        if not check.valid:
            response.status_code = 422
    response.headers["Vary"] = "HX-Request"
    return response
