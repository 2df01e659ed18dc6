"""A TraceSource holding a few hand-made traces, for the pages' tests (no database, no Tempo)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from portal.integrations.trace_source import (
    Span,
    SpanEvent,
    Trace,
    TraceQuery,
    TraceSourceError,
    TraceSummary,
)

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
REQUEST_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ERROR_TRACE = "0af7651916cd43dd8448eb211c80319c"
GENAI_TRACE = "11111111111111111111111111111111"


def span(
    trace_id: str,
    span_id: str,
    parent: str | None,
    name: str,
    start_ms: float,
    end_ms: float,
    *,
    service: str = "air-quality",
    kind: str = "INTERNAL",
    status: str = "UNSET",
    attributes: dict[str, Any] | None = None,
    events: Sequence[SpanEvent] = (),
) -> Span:
    """Return a span ``start_ms``..``end_ms`` after :data:`T0`."""
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        service=service,
        name=name,
        kind=kind,
        start=T0 + timedelta(milliseconds=start_ms),
        end=T0 + timedelta(milliseconds=end_ms),
        status=status,
        attributes=attributes or {},
        resource={"service.name": service, "service.version": "0.1.0"},
        events=events,
    )


def sample_traces() -> list[Trace]:
    """Three traces: a request with an Open-Meteo call, a failure, a GenAI call."""
    request = Trace(
        REQUEST_TRACE,
        [
            span(
                REQUEST_TRACE,
                "a" * 16,
                None,
                "GET /aqi",
                0,
                120,
                kind="SERVER",
                attributes={"http.route": "/aqi", "http.response.status_code": 200},
            ),
            span(REQUEST_TRACE, "b" * 16, "a" * 16, "validate", 2, 12),
            span(
                REQUEST_TRACE,
                "c" * 16,
                "a" * 16,
                "GET api.open-meteo.com",
                10,
                100,
                kind="CLIENT",
                attributes={"server.address": "api.open-meteo.com"},
            ),
            span(REQUEST_TRACE, "d" * 16, "a" * 16, "predict", 100, 115, service="aqi-model"),
        ],
    )
    boom = SpanEvent(
        "exception",
        T0 + timedelta(milliseconds=5),
        {"exception.type": "ValueError", "exception.message": "no station near 91.0,0.0"},
    )
    failed = Trace(
        ERROR_TRACE,
        [
            span(
                ERROR_TRACE,
                "e" * 16,
                None,
                "GET /aqi",
                0,
                8,
                kind="SERVER",
                status="ERROR",
                events=[boom],
            ),
        ],
    )
    genai = Trace(
        GENAI_TRACE,
        [
            span(GENAI_TRACE, "1" * 16, None, "POST /ask", 0, 900, service="rag", kind="SERVER"),
            span(
                GENAI_TRACE,
                "2" * 16,
                "1" * 16,
                "chat qwen2.5",
                50,
                880,
                service="rag",
                kind="CLIENT",
                attributes={
                    "gen_ai.request.model": "qwen2.5:0.5b",
                    "gen_ai.usage.input_tokens": 412,
                    "gen_ai.usage.output_tokens": 96,
                },
            ),
        ],
    )
    return [request, failed, genai]


def summarise(trace: Trace) -> TraceSummary:
    """Return the search row of ``trace``."""
    root = next(s for s in trace.spans if s.parent_span_id is None)
    start = min(s.start for s in trace.spans)
    end = max(s.end for s in trace.spans)
    return TraceSummary(
        trace_id=trace.trace_id,
        root_service=root.service,
        root_operation=root.name,
        start=start,
        duration_ms=(end - start).total_seconds() * 1000,
        span_count=len(trace.spans),
        error=any(s.status == "ERROR" for s in trace.spans),
        services=tuple(sorted({s.service for s in trace.spans})),
    )


@dataclass
class FakeTraceSource:
    """Answers from :attr:`traces`; ``failure`` makes every call raise it."""

    traces: list[Trace] = field(default_factory=sample_traces)
    failure: TraceSourceError | None = None
    queries: list[TraceQuery] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``fake``."""
        return "fake"

    def search(self, query: TraceQuery) -> list[TraceSummary]:
        """Filter by service, operation, duration and errors; newest first."""
        self.queries.append(query)
        if self.failure is not None:
            raise self.failure
        rows = [summarise(trace) for trace in self.traces]
        if query.service:
            rows = [row for row in rows if query.service in row.services]
        if query.operation:
            rows = [row for row in rows if row.root_operation == query.operation]
        if query.min_duration_ms is not None:
            rows = [row for row in rows if row.duration_ms >= query.min_duration_ms]
        if query.max_duration_ms is not None:
            rows = [row for row in rows if row.duration_ms <= query.max_duration_ms]
        if query.errors_only:
            rows = [row for row in rows if row.error]
        rows.sort(key=lambda row: row.start, reverse=True)
        return rows[: query.limit]

    def trace(self, trace_id: str) -> Trace | None:
        """Return the trace with ``trace_id``, None when it is not held."""
        if self.failure is not None:
            raise self.failure
        return next((t for t in self.traces if t.trace_id == trace_id), None)
