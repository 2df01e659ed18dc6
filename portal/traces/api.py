"""JSON API of the Traces pages: the same search and the same trace, for scripts and tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from portal.api_errors import FieldErrors, error_responses
from portal.integrations.trace_source import Span, TraceSourceError, TraceSummary
from portal.traces.routes import read_trace, run_search
from portal.traces.runtime import TracesDep
from portal.traces.waterfall import build_waterfall

router = APIRouter(prefix="/api/traces", tags=["traces"])

SOURCE_FAILED = {503: "The trace source (the portal's store or Tempo) did not answer usably"}


class TraceSummaryOut(BaseModel):
    """One trace as a search lists it; durations in milliseconds."""

    trace_id: str
    root_service: str | None
    root_operation: str | None
    start: datetime
    duration_ms: float
    span_count: int
    error: bool
    services: list[str]
    url: str


class TraceSearchOut(BaseModel):
    """The traces matching a search: newest first, or slowest first with ``sort=slowest``."""

    source: str
    items: list[TraceSummaryOut]


class SpanEventOut(BaseModel):
    """An event of a span (an exception is an event named ``exception``)."""

    name: str
    time: datetime
    attributes: dict[str, Any]


class SpanOut(BaseModel):
    """One span, in the waterfall's tree order, with its depth and critical-path mark."""

    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: str
    start: datetime
    end: datetime
    duration_ms: float
    status: str
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[SpanEventOut]
    depth: int
    critical: bool


class TraceOut(BaseModel):
    """A whole trace: its spans as the waterfall orders them (parent, then children)."""

    trace_id: str
    source: str
    start: datetime
    duration_ms: float
    span_count: int
    error_count: int
    services: list[str]
    spans: list[SpanOut]


def summary_out(row: TraceSummary) -> TraceSummaryOut:
    """Convert a search result into its JSON form."""
    return TraceSummaryOut(
        trace_id=row.trace_id,
        root_service=row.root_service,
        root_operation=row.root_operation,
        start=row.start,
        duration_ms=row.duration_ms,
        span_count=row.span_count,
        error=row.error,
        services=list(row.services),
        url=f"/traces/{row.trace_id}",
    )


def span_out(span: Span, depth: int, critical: bool) -> SpanOut:
    """Convert a span into its JSON form."""
    return SpanOut(
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        service=span.service,
        name=span.name,
        kind=span.kind,
        start=span.start,
        end=span.end,
        duration_ms=span.duration_ms,
        status=span.status,
        status_message=span.status_message,
        attributes=dict(span.attributes),
        resource=dict(span.resource),
        events=[
            SpanEventOut(name=e.name, time=e.time, attributes=dict(e.attributes))
            for e in span.events
        ],
        depth=depth,
        critical=critical,
    )


@router.get(
    "",
    response_model=TraceSearchOut,
    responses=error_responses(422, described=SOURCE_FAILED),
)
def api_search_traces(request: Request, runtime: TracesDep) -> Any:
    """Search traces by the page's fields.

    The fields: service, operation, min_ms, max_ms, errors, attr (key=value), from, to,
    limit, sort (newest or slowest).
    """
    outcome = run_search(runtime.source, dict(request.query_params))
    if outcome.errors:
        body = FieldErrors(detail="the search is invalid", errors=outcome.errors)
        return JSONResponse(body.model_dump(), status_code=422)
    if outcome.problem:
        raise HTTPException(503, outcome.problem)
    items = [summary_out(row) for row in outcome.results]
    return TraceSearchOut(source=runtime.source.kind, items=items)


@router.get(
    "/{trace_id}",
    response_model=TraceOut,
    responses=error_responses(
        422,
        described={400: "The trace id is not 32 hexadecimal characters", 404: "No such trace"}
        | SOURCE_FAILED,
    ),
)
def api_get_trace(runtime: TracesDep, trace_id: str) -> TraceOut:
    """Return one trace with every span (attributes, events, resource), in tree order."""
    try:
        trace = read_trace(runtime.source, trace_id)
    except TraceSourceError as exc:
        raise HTTPException(503, str(exc)) from exc
    waterfall = build_waterfall(trace)
    if waterfall is None:  # read_trace refuses an empty trace; kept for the type checker
        raise HTTPException(404, f"There is no trace {trace_id}.")
    return TraceOut(
        trace_id=waterfall.trace_id,
        source=runtime.source.kind,
        start=waterfall.start,
        duration_ms=waterfall.duration_ms,
        span_count=len(waterfall.rows),
        error_count=waterfall.error_count,
        services=[service.name for service in waterfall.services],
        spans=[span_out(row.span, row.depth, row.critical) for row in waterfall.rows],
    )
