"""The embedded trace store as the Traces pages read it: the portal database's TraceSource.

Searches read one row per trace (``trace_summary``, kept by :mod:`portal.traces.store`),
with ``EXISTS`` on the spans for an operation and on ``trace_attribute`` for a
``key=value`` pair; a trace is its spans in start order.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from portal.integrations.trace_source import (
    MAX_RESULTS,
    TRACE_ID,
    Span,
    SpanEvent,
    Trace,
    TraceQuery,
    TraceSummary,
)
from portal.traces.models import from_ns, to_ns, trace_attribute, trace_span, trace_summary


class EmbeddedTraceSource:
    """The :class:`~portal.integrations.trace_source.TraceSource` of the portal's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def kind(self) -> str:
        """``embedded``: the portal's own store."""
        return "embedded"

    def search(self, query: TraceQuery) -> list[TraceSummary]:
        """Return the traces matching ``query``, newest first, at most ``query.limit``."""
        summary = trace_summary.c
        statement = sa.select(trace_summary)
        if query.service:
            member = summary.services.contains(f"|{query.service}|", autoescape=True)
            statement = statement.where(member)
        if query.operation:
            spans = sa.select(trace_span.c.trace_id).where(
                trace_span.c.trace_id == summary.trace_id, trace_span.c.name == query.operation
            )
            if query.service:
                spans = spans.where(trace_span.c.service == query.service)
            statement = statement.where(spans.exists())
        if query.min_duration_ms is not None:
            statement = statement.where(summary.duration_ns >= int(query.min_duration_ms * 1e6))
        if query.max_duration_ms is not None:
            statement = statement.where(summary.duration_ns <= int(query.max_duration_ms * 1e6))
        if query.errors_only:
            statement = statement.where(summary.error.is_(True))
        if query.attribute is not None:
            key, value = query.attribute
            pairs = sa.select(trace_attribute.c.trace_id).where(
                trace_attribute.c.trace_id == summary.trace_id,
                trace_attribute.c.key == key,
                trace_attribute.c.value == value,
            )
            statement = statement.where(pairs.exists())
        if query.start is not None:
            statement = statement.where(summary.start_ns >= to_ns(query.start))
        if query.end is not None:
            statement = statement.where(summary.start_ns <= to_ns(query.end))
        limit = max(1, min(query.limit, MAX_RESULTS))
        statement = statement.order_by(summary.start_ns.desc(), summary.trace_id).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return [
            TraceSummary(
                trace_id=row["trace_id"],
                root_service=row["root_service"],
                root_operation=row["root_operation"],
                start=from_ns(row["start_ns"]),
                duration_ms=row["duration_ns"] / 1e6,
                span_count=row["span_count"],
                error=bool(row["error"]),
                services=tuple(part for part in row["services"].split("|") if part),
            )
            for row in rows
        ]

    def trace(self, trace_id: str) -> Trace | None:
        """Return one trace with its spans in start order, None when no span of it is stored."""
        trace_id = trace_id.lower()
        if not TRACE_ID.fullmatch(trace_id):
            return None
        statement = (
            sa.select(trace_span)
            .where(trace_span.c.trace_id == trace_id)
            .order_by(trace_span.c.start_ns, trace_span.c.span_id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        if not rows:
            return None
        return Trace(trace_id=trace_id, spans=[_span(row) for row in rows])


def _span(row: Any) -> Span:
    return Span(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        service=row["service"],
        name=row["name"],
        kind=row["kind"],
        start=from_ns(row["start_ns"]),
        end=from_ns(row["end_ns"]),
        status=row["status"],
        status_message=row["status_message"],
        attributes=row["attributes"],
        resource=row["resource"],
        events=[
            SpanEvent(
                name=event["name"],
                time=from_ns(event["time_ns"]),
                attributes=event["attributes"],
            )
            for event in row["events"]
        ],
    )
