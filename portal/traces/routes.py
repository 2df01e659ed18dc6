"""Traces pages: the search (htmx live filtering, the URL holds the query) and one waterfall.

The query string is parsed by :func:`portal.traces.search.parse_query` into a
:class:`~portal.integrations.trace_source.TraceQuery` with one message per bad field;
the page shows them beside the fields (never a 5xx). A source that does not answer is
said on the page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from portal.catalog.models import Entity
from portal.integrations.trace_source import (
    TRACE_ID,
    Trace,
    TraceQuery,
    TraceSource,
    TraceSourceError,
    TraceSourceUnavailableError,
    TraceSummary,
)
from portal.traces.runtime import TracesDep, TracesRuntime
from portal.traces.search import parse_query
from portal.traces.waterfall import build_waterfall, format_ms
from portal.ui.render import page, wants_fragment

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/traces", include_in_schema=False)

# The page's own parameter: results sorted by duration (the SLO page's "slow traces").
SORTS = ("newest", "slowest")
ENTITY_TRACES = 5


@dataclass
class SearchOutcome:
    """What a search page shows: the form's values, its errors, the results or why none."""

    form: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    results: list[TraceSummary] = field(default_factory=list)
    problem: str | None = None  # the source did not answer, or answered nonsense
    unavailable: bool = False
    sort: str = "newest"

    @property
    def longest_ms(self) -> float:
        """The longest result's duration: the duration bars' 100 %."""
        return max((row.duration_ms for row in self.results), default=0.0)


def source_problem(exc: TraceSourceError) -> str:
    """Return the sentence a page shows for a source that failed."""
    if isinstance(exc, TraceSourceUnavailableError):
        return f"The trace source is unavailable: {exc}"
    return f"The trace source answered something the portal cannot read: {exc}"


def run_search(source: TraceSource, params: Mapping[str, str]) -> SearchOutcome:
    """Parse ``params``, run the search when they are valid, and say what went wrong."""
    form = {key: value for key, value in params.items() if key != "sort"}
    sort = params.get("sort", "newest")
    outcome = SearchOutcome(form=form, sort=sort if sort in SORTS else "newest")
    if sort not in SORTS:
        outcome.errors["sort"] = f"sort must be one of {', '.join(SORTS)}, not {sort[:40]!r}"
    parsed = parse_query(form)
    outcome.errors.update(parsed.errors)
    if outcome.errors:
        return outcome
    try:
        outcome.results = source.search(parsed.query)
    except TraceSourceError as exc:
        logger.warning("trace search failed: %s", exc)
        outcome.problem = source_problem(exc)
        outcome.unavailable = isinstance(exc, TraceSourceUnavailableError)
        return outcome
    if outcome.sort == "slowest":
        outcome.results.sort(key=lambda row: row.duration_ms, reverse=True)
    return outcome


def read_trace(source: TraceSource, trace_id: str) -> Trace:
    """Return the trace ``trace_id`` (any case); 400 for a malformed id, 404 when unknown."""
    wanted = trace_id.lower()
    if not TRACE_ID.match(wanted):
        raise HTTPException(400, "trace_id: a trace id is 32 hexadecimal characters.")
    trace = source.trace(wanted)
    if trace is None or not trace.spans:
        raise HTTPException(404, f"There is no trace {wanted} in the trace source.")
    return trace


def _context(runtime: TracesRuntime, **values: Any) -> dict[str, Any]:
    return {"active": "traces", "source_kind": runtime.source.kind, "fmt_ms": format_ms, **values}


@router.get("", response_class=HTMLResponse)
def traces_search(request: Request, runtime: TracesDep) -> Response:
    """Search traces; htmx swaps only the results as the form changes."""
    outcome = run_search(runtime.source, dict(request.query_params))
    context = _context(runtime, outcome=outcome, live=wants_fragment(request))
    return page(request, "traces/search.html", context, fragment="results")


@router.get("/{trace_id}", response_class=HTMLResponse)
def trace_page(request: Request, runtime: TracesDep, trace_id: str) -> Response:
    """One trace as a waterfall: tree, time axis, critical path and each span's details."""
    try:
        trace = read_trace(runtime.source, trace_id)
    except TraceSourceError as exc:
        raise HTTPException(503, source_problem(exc)) from exc
    waterfall = build_waterfall(trace)
    return page(request, "traces/trace.html", _context(runtime, waterfall=waterfall))


@dataclass(frozen=True)
class EntityTraces:
    """The Traces section of a catalog Component's page: recent and error traces."""

    service: str
    recent: list[TraceSummary]
    errors: list[TraceSummary]
    problem: str | None = None

    @property
    def fmt_ms(self) -> Any:
        """The duration format of the Traces pages."""
        return format_ms


def entity_traces(runtime: TracesRuntime | None, entity: Entity) -> EntityTraces | None:
    """Return the latest and the latest failed traces of a Component's service (by name)."""
    if runtime is None or entity.kind_key != "component":
        return None
    service = entity.name
    try:
        recent = runtime.source.search(TraceQuery(service=service, limit=ENTITY_TRACES))
        failed = runtime.source.search(
            TraceQuery(service=service, errors_only=True, limit=ENTITY_TRACES)
        )
    except TraceSourceError as exc:
        logger.warning("traces of %s unreadable: %s", service, exc)
        return EntityTraces(service, [], [], source_problem(exc))
    return EntityTraces(service, recent, failed)
