"""Where the Traces pages read traces from: the portal's own store, or Grafana Tempo.

``TraceSource`` is what the pages and the JSON API need: a search returning one summary
per trace, and one whole trace by id. The embedded source (the portal's database, fed by
its OTLP receiver) lives in :mod:`portal.traces.store`; :mod:`portal.integrations.tempo`
queries Tempo's HTTP API. Both answer with the types below, so the pages never know which
one they read. A source that cannot answer raises :class:`TraceSourceUnavailableError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
MAX_RESULTS = 200


class TraceSourceError(RuntimeError):
    """The source answered something the portal cannot use."""


class TraceSourceUnavailableError(TraceSourceError):
    """The source could not be reached in time (or answered 5xx)."""


@dataclass(frozen=True)
class TraceQuery:
    """A search: every field optional; times are aware datetimes, durations milliseconds.

    ``attribute`` is one ``(key, value)`` pair matched on any span of the trace (span or
    resource attributes, compared as text).
    """

    service: str | None = None
    operation: str | None = None
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    errors_only: bool = False
    attribute: tuple[str, str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    limit: int = 50


@dataclass(frozen=True)
class TraceSummary:
    """One trace as a search lists it."""

    trace_id: str
    root_service: str | None
    root_operation: str | None
    start: datetime
    duration_ms: float
    span_count: int
    error: bool
    services: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpanEvent:
    """An event of a span (an exception is an event named ``exception``)."""

    name: str
    time: datetime
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    """One span of a trace; ids are lower-case hex, times aware datetimes."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER, UNSPECIFIED
    start: datetime
    end: datetime
    status: str  # UNSET, OK, ERROR
    status_message: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] = field(default_factory=dict)
    events: Sequence[SpanEvent] = ()

    @property
    def duration_ms(self) -> float:
        """The span's duration in milliseconds."""
        return (self.end - self.start).total_seconds() * 1000


@dataclass(frozen=True)
class Trace:
    """A whole trace: its spans in start order."""

    trace_id: str
    spans: Sequence[Span]


class TraceSource(Protocol):
    """What the Traces pages read."""

    @property
    def kind(self) -> str:
        """``embedded`` or ``tempo`` (shown on the page)."""
        ...

    def search(self, query: TraceQuery) -> list[TraceSummary]:
        """Return the traces matching ``query``, newest first, at most ``query.limit``."""
        ...

    def trace(self, trace_id: str) -> Trace | None:
        """Return one trace, None when the source has no span of it."""
        ...
