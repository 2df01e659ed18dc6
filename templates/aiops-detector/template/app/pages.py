"""The page: each model's series with its score and windows, the windows' table, the remediations.

``GET /`` shows every model over the last hours (live: the windows' table refreshes with
htmx); ``?query=`` (or ``?series=`` for an inline series) shows one, and ``start`` and
``end`` (RFC 3339 or Unix seconds) choose the range, which is how the chart link in a
proposal's evidence opens the anomaly it is about. A bad parameter is a 422 page naming it,
an unknown query a 404 page listing the trained ones: never a 5xx. htmx asks for a part by
its id (``HX-Target``): ``windows`` or ``remediations``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from .charts import MAX_PAGE_POINTS, SourceView, source_views
from .runtime import Runtime, RuntimeDep
from .schemas import MAX_RANGE, as_utc
from .settings import VERSION
from .training import Source, TrainedModel

HERE = Path(__file__).parent
DEFAULT_SPAN = timedelta(hours=6)
CHARTS_EACH = 3  # charts per model when the page shows them all
CHARTS_ONE = 12  # when it shows one
MIN_REFRESH_SECONDS = 15
PARTS = ("windows", "remediations")
router = APIRouter()
templates = Jinja2Templates(directory=HERE / "templates")


def utc(moment: datetime | float | None) -> str:
    """Write a time (or Unix seconds) as people read it: ``2026-03-02 10:05:00 UTC``."""
    if moment is None:
        return "-"
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def rfc3339(moment: datetime | float) -> str:
    """Write a time as the page's parameters take it: ``2026-03-02T10:05:00Z``."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


templates.env.filters["utc"] = utc
templates.env.filters["rfc3339"] = rfc3339


class PageError(ValueError):
    """A parameter the page cannot use, and its name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True)
class PageRange:
    """The range shown; ``live`` when no end was asked (the newest data, refreshed)."""

    start: datetime
    end: datetime
    live: bool


def parse_time(field: str, text: str) -> datetime:
    """Read ``text`` as RFC 3339 (without an offset: UTC) or Unix seconds."""
    raw = text.strip()
    try:
        try:
            return datetime.fromtimestamp(float(raw), UTC)
        except ValueError:
            return as_utc(datetime.fromisoformat(raw))
    except (ValueError, OverflowError, OSError):
        raise PageError(
            field, f"{text[:60]!r} is not a time: RFC 3339 (2026-03-02T10:00:00Z) or Unix seconds"
        ) from None


def page_range(start: str | None, end: str | None, now: datetime) -> PageRange:
    """Return the range asked for: by default the last six hours, never past ``now``."""
    last = min(parse_time("end", end), now) if end else now
    first = parse_time("start", start) if start else last - DEFAULT_SPAN
    if not first < last:
        raise PageError("start", f"must be before end ({utc(first)} is not before {utc(last)})")
    if last - first > MAX_RANGE:
        raise PageError("start", f"the range is longer than {MAX_RANGE.days} days")
    return PageRange(first, last, live=not end)


def _wanted(
    runtime: Runtime, query: str | None, series: str | None
) -> tuple[list[TrainedModel], Source | None]:
    if query is not None and series is not None:
        raise PageError("series", "give query or series, not both")
    if query is None and series is None:
        return runtime.registry.all(), None
    source = Source("query", query) if query is not None else Source("series", series or "")
    model = runtime.registry.get(source)
    return ([] if model is None else [model]), source


def _part(request: Request) -> str | None:
    headers = request.headers
    if headers.get("HX-Request") != "true" or headers.get("HX-Boosted") == "true":
        return None
    if headers.get("HX-History-Restore-Request") == "true":
        return None
    target = headers.get("HX-Target")
    return target if target in PARTS else None


def _remediations(runtime: Runtime, source: Source | None) -> dict[str, Any]:
    remediations = runtime.remediations
    records = remediations.log.newest_first()
    if source is not None:
        records = [record for record in records if record.query == source.name]
    return {
        "records": records,
        "dry_run_reason": remediations.dry_run_reason,
        "rules": len(remediations.remediator.config.rules),
        "rules_file": str(runtime.settings.remediation_file),
    }


def _self_url(source: Source | None, span: PageRange | None) -> str:
    params: dict[str, str] = {} if source is None else {source.kind: source.name}
    if span is not None and not span.live:
        params |= {"start": rfc3339(span.start), "end": rfc3339(span.end)}
    elif span is not None and span.end - span.start != DEFAULT_SPAN:
        params["start"] = rfc3339(span.start)  # live, but a longer or shorter look back
    return "/" + (f"?{urlencode(params)}" if params else "")


def _quick(source: Source | None, now: datetime) -> list[tuple[str, str]]:
    spans = (("hour", 1), ("6 hours", 6), ("day", 24), ("week", 168))
    return [
        (label, _self_url(source, PageRange(now - timedelta(hours=hours), now, live=True)))
        for label, hours in spans
    ]


@router.get("/", response_class=HTMLResponse)
async def index(
    request: Request,
    runtime: RuntimeDep,
    query: str | None = None,
    series: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> HTMLResponse:
    """Render the page (or, for htmx, the part it asks for)."""
    part = _part(request)
    context: dict[str, Any] = {
        "settings": runtime.settings,
        "version": VERSION,
        "models": runtime.registry.all(),
        "remediation": {},
        "views": [],
        "span": None,
        "source": None,
        "missing": None,
        "errors": {},
        "max_page_points": MAX_PAGE_POINTS,
        "refresh_seconds": max(MIN_REFRESH_SECONDS, int(runtime.settings.detect_interval_seconds)),
        "self_url": "/",
        "quick": [],
        "asked": {"start": start, "end": end},  # as typed: kept when refused, to be corrected
    }
    status = 200
    try:
        span = page_range(start, end, runtime.clock())
        models, source = _wanted(runtime, query, series)
    except PageError as error:
        context["errors"] = {error.field: error.message}
        context["remediation"] = _remediations(runtime, None)
        status = 422
    else:
        context |= {"span": span, "source": source, "remediation": _remediations(runtime, source)}
        if source is not None and not models:
            context["missing"] = source
            status = 404
        elif part != "remediations":
            charts = CHARTS_EACH if source is None else CHARTS_ONE
            views: list[SourceView] = await asyncio.to_thread(
                source_views, runtime, models, span.start, span.end, charts
            )
            context["views"] = views
        context["self_url"] = _self_url(source, span)
        if not context["missing"]:
            context["quick"] = _quick(source, runtime.clock())
    name = "index.html" if part is None or status != 200 else f"_{part}.html"
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Vary"] = "HX-Request, HX-Target"
    return response
