"""Grafana Tempo as the Traces pages' source, read over its HTTP API with httpx.

A search is ``GET /api/search`` with the query written in TraceQL
(:func:`portal.traces.search.traceql`), the time range in unix seconds and a limit; a
trace is ``GET /api/v2/traces/<id>`` (or the older ``/api/traces/<id>``), answered in
OTLP's JSON. Tempo's JSON writes ids either as hex or as base64 (protobuf's JSON form of
bytes) and enums either as numbers or names, depending on the endpoint and version, so
the reader here takes both and hands on lower-case hex and the names
:class:`~portal.integrations.trace_source.Span` uses.

A slow or absent Tempo, or a 5xx, raises :class:`TraceSourceUnavailableError`; a refusal
(4xx) or an answer that is not what Tempo documents raises :class:`TraceSourceError`
naming the path.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from portal.integrations.json_http import JsonHttpServer
from portal.integrations.trace_source import (
    MAX_RESULTS,
    SPAN_ID,
    TRACE_ID,
    Span,
    SpanEvent,
    Trace,
    TraceQuery,
    TraceSourceError,
    TraceSourceUnavailableError,
    TraceSummary,
)
from portal.integrations.traceql import traceql

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_WINDOW = timedelta(hours=1)  # searched when a query names no time range
SPANS_PER_SPANSET = 3  # spss: the summaries need the matched count, not every span
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_NO_ROOT = "<root span not yet received>"  # what Tempo names a trace whose root is missing
KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUSES = ("UNSET", "OK", "ERROR")


def _object(raw: Any) -> Mapping[str, Any]:
    return raw if isinstance(raw, Mapping) else {}


def _list(raw: Any) -> list[Any]:
    return raw if isinstance(raw, list) else []


def read_id(raw: Any, size: int) -> str | None:
    """Return an id of ``size`` bytes as lower-case hex, from hex or base64; None if empty.

    Tempo's search trims a trace id's leading zeros, so shorter hex is padded. Base64 of
    8 or 16 bytes ends in ``=``, so it is never read as hex. An id of zeros is no id
    (OTLP's "no parent").
    """
    if not isinstance(raw, str) or not raw:
        return None
    if _HEX.fullmatch(raw) and len(raw) <= size * 2:
        found = raw.lower().rjust(size * 2, "0")
    else:
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{raw[:40]!r} is neither hex nor base64") from None
        if len(data) != size:
            raise ValueError(f"{raw[:40]!r} is not {size} bytes")
        found = data.hex()
    return None if found.strip("0") == "" else found


def _number(raw: Any) -> int:
    # OTLP's JSON writes 64-bit integers as strings.
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError(f"{raw!r} is not an integer")
    return int(raw)


def _time(nanoseconds: int) -> datetime:
    return datetime.fromtimestamp(nanoseconds // 1_000_000_000, UTC) + timedelta(
        microseconds=(nanoseconds % 1_000_000_000) // 1000
    )


def any_value(raw: Any) -> Any:
    """Return the Python value of an OTLP ``AnyValue`` (ints from their JSON strings)."""
    value = _object(raw)
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return _number(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [any_value(item) for item in _list(_object(value["arrayValue"]).get("values"))]
    if "kvlistValue" in value:
        return attributes(_object(value["kvlistValue"]).get("values"))
    if "bytesValue" in value:
        return str(value["bytesValue"])  # kept as the base64 text it arrived in
    return None


def attributes(raw: Any) -> dict[str, Any]:
    """Return OTLP ``KeyValue`` items as a dict."""
    return {
        str(item["key"]): any_value(item.get("value"))
        for item in _list(raw)
        if isinstance(item, Mapping) and isinstance(item.get("key"), str)
    }


def _enum(raw: Any, names: tuple[str, ...], prefix: str) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(names):
        return names[raw]
    if isinstance(raw, str):
        name = raw.removeprefix(prefix)
        if name in names:
            return name
    return names[0]


def _span(raw: Mapping[str, Any], resource: Mapping[str, Any], service: str) -> Span:
    trace_id = read_id(raw.get("traceId"), 16)
    span_id = read_id(raw.get("spanId"), 8)
    if trace_id is None or span_id is None:
        raise ValueError("a span has no trace or span id")
    start = _number(raw.get("startTimeUnixNano"))
    # A skewed clock can end a span before it starts; the waterfall draws it as an instant.
    end = max(start, _number(raw.get("endTimeUnixNano", start)))
    status = _object(raw.get("status"))
    events = [
        SpanEvent(
            name=str(event.get("name") or ""),
            time=_time(_number(event.get("timeUnixNano", start))),
            attributes=attributes(event.get("attributes")),
        )
        for event in _list(raw.get("events"))
        if isinstance(event, Mapping)
    ]
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=read_id(raw.get("parentSpanId"), 8),
        service=service,
        name=str(raw.get("name") or ""),
        kind=_enum(raw.get("kind"), KINDS, "SPAN_KIND_"),
        start=_time(start),
        end=_time(end),
        status=_enum(status.get("code"), STATUSES, "STATUS_CODE_"),
        status_message=str(status.get("message") or ""),
        attributes=attributes(raw.get("attributes")),
        resource=resource,
        events=events,
    )


def read_trace(body: Mapping[str, Any]) -> list[Span]:
    """Return the spans of an OTLP JSON trace, in start order.

    Takes ``batches`` (Tempo's v1) or ``resourceSpans`` (OTLP, Tempo's v2 inside
    ``trace``), and ``scopeSpans`` or the older ``instrumentationLibrarySpans``.
    """
    inner = _object(body.get("trace")) if "trace" in body else body
    spans: list[Span] = []
    for batch in _list(inner.get("batches")) + _list(inner.get("resourceSpans")):
        resource = attributes(_object(_object(batch).get("resource")).get("attributes"))
        service = str(resource.get("service.name") or "unknown")
        scopes = _list(_object(batch).get("scopeSpans"))
        scopes += _list(_object(batch).get("instrumentationLibrarySpans"))
        for scope in scopes:
            for raw in _list(_object(scope).get("spans")):
                spans.append(_span(_object(raw), resource, service))
    return sorted(spans, key=lambda span: (span.start, span.span_id))


def read_summary(raw: Mapping[str, Any], errors_only: bool) -> TraceSummary:
    """Return one trace of a search answer as a summary.

    ``serviceStats`` (newer Tempo versions) gives the span and error counts per service;
    without it the count is what the spansets matched and the error mark what was asked.
    """
    trace_id = read_id(raw.get("traceID"), 16)
    if trace_id is None:
        raise ValueError("a trace has no traceID")
    stats = {str(name): _object(value) for name, value in _object(raw.get("serviceStats")).items()}
    spansets = [_object(item) for item in _list(raw.get("spanSets")) or [raw.get("spanSet")]]
    if stats:
        span_count = sum(_number(value.get("spanCount", 0)) for value in stats.values())
        error = any(_number(value.get("errorCount", 0)) > 0 for value in stats.values())
    else:
        span_count = max((_number(item.get("matched", 0)) for item in spansets), default=0)
        error = errors_only
    root_service = raw.get("rootServiceName")
    root_operation = raw.get("rootTraceName")
    services = tuple(sorted(stats)) or ((str(root_service),) if root_service else ())
    return TraceSummary(
        trace_id=trace_id,
        root_service=None if root_service in (None, "", _NO_ROOT) else str(root_service),
        root_operation=str(root_operation) if root_operation else None,
        start=_time(_number(raw.get("startTimeUnixNano", 0))),
        duration_ms=float(raw.get("durationMs") or 0),  # Tempo leaves out a zero
        span_count=span_count,
        error=error,
        services=tuple(name for name in services if name != _NO_ROOT),
    )


class TempoTraceSource(JsonHttpServer):
    """Grafana Tempo's HTTP API as a :class:`~portal.integrations.trace_source.TraceSource`.

    ``trace_api`` picks the trace-by-id endpoint: ``v2`` (``/api/v2/traces``, current
    Tempo) or ``v1`` (``/api/traces``, older versions too). ``transport`` replaces the
    network in tests.
    """

    kind = "tempo"

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
        *,
        trace_api: Literal["v1", "v2"] = "v2",
    ) -> None:
        """Talk to Tempo at ``url``; each call gives up after ``timeout`` seconds."""
        super().__init__(url, timeout, transport)
        self._trace_path = "/api/v2/traces/" if trace_api == "v2" else "/api/traces/"

    def _unreachable(self, error: Exception) -> TraceSourceUnavailableError:
        reason = self.unreachable_reason(error)
        return TraceSourceUnavailableError(f"Tempo at {self.url} is not reachable ({reason})")

    def _get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET ``path``; return its JSON, None for a 404."""
        try:
            response = self._client.get(path, params=dict(params or {}))
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise self._unreachable(error) from error
        said = response.text.strip()[:300]
        said = f": {said}" if said else ""
        if response.status_code >= 500:
            raise TraceSourceUnavailableError(
                f"Tempo at {self.url} answered {response.status_code} to {path}{said}"
            )
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise TraceSourceError(
                f"Tempo at {self.url} refused {path} ({response.status_code}){said}"
            )
        try:
            return response.json()
        except ValueError:
            raise TraceSourceError(f"Tempo at {self.url}: {path} did not answer JSON") from None

    def search(self, query: TraceQuery) -> list[TraceSummary]:
        """Return the traces matching ``query``, newest first, at most ``query.limit``."""
        end = query.end or datetime.now(UTC)
        start = query.start or end - DEFAULT_WINDOW
        limit = max(1, min(query.limit, MAX_RESULTS))
        params: dict[str, str | int] = {
            "q": traceql(query),
            "start": math.floor(start.timestamp()),
            "end": math.ceil(end.timestamp()),
            "limit": limit,
            "spss": SPANS_PER_SPANSET,
        }
        path = "/api/search"
        body = self._get(path, params)
        if body is None:
            raise TraceSourceError(f"Tempo at {self.url} has no {path} (is the URL Tempo's?)")
        if not isinstance(body, Mapping) or not isinstance(body.get("traces", []), list):
            raise TraceSourceError(f"Tempo at {self.url}: {path}: traces is not a list")
        try:
            found = [
                read_summary(_object(raw), query.errors_only) for raw in body.get("traces", [])
            ]
        except (ValueError, TypeError, OverflowError) as error:
            raise TraceSourceError(f"Tempo at {self.url}: {path}: {error}") from None
        found.sort(key=lambda summary: summary.start, reverse=True)
        return found[:limit]

    def trace(self, trace_id: str) -> Trace | None:
        """Return one trace, None when Tempo has no span of it (or the id is not one)."""
        wanted = trace_id.strip().lower()
        # Checked before it becomes part of a path: nothing else may reach Tempo's URL.
        if not TRACE_ID.fullmatch(wanted) or wanted.strip("0") == "":
            return None
        path = self._trace_path + wanted
        body = self._get(path)
        if body is None:
            return None
        if not isinstance(body, Mapping):
            raise TraceSourceError(f"Tempo at {self.url}: {path} did not answer a JSON object")
        try:
            spans = read_trace(body)
        except (ValueError, TypeError, OverflowError) as error:
            raise TraceSourceError(f"Tempo at {self.url}: {path}: {error}") from None
        spans = [
            span for span in spans if span.trace_id == wanted and SPAN_ID.fullmatch(span.span_id)
        ]
        return Trace(wanted, spans) if spans else None
