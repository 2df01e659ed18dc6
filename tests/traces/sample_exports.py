"""Three realistic traces as OTLP exports, sent to a live portal's receiver (``POST /v1/traces``).

What instrumented services send: a request of ``air-quality`` with an Open-Meteo client
child and a ``predict`` span that a second service (``aqi-model``) exports on its own; a
failed request with an exception event; a RAG question whose ``chat`` span carries the
GenAI semantic-convention attributes and token counts. Protobuf as the Python SDK sends
it, gzipped for the failure, and OTLP/JSON (hex ids) for the RAG service's export. The
ids are fixed so that tests can name rows; the times are relative to a given start, so the
spans fall inside the store's retention.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass

import httpx
from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

REQUEST_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ERROR_TRACE = "0af7651916cd43dd8448eb211c80319c"
GENAI_TRACE = "5b8efff798038103d269b633813fc60c"
REQUEST_SPAN = "00f067aa0ba902b7"
CLIENT_SPAN = "53995c3f42cd8ad8"
GENAI_SPAN = "eee19b7ec3c1b174"
SERVICE = "air-quality"
MODEL_SERVICE = "aqi-model"
RAG_SERVICE = "runbook-assistant"
OPEN_METEO = "air-quality-api.open-meteo.com"
CHAT_MODEL = "qwen2.5:0.5b"
MS = 1_000_000  # ns
Attributes = dict[str, str | int | float | bool]
SERVER = Span.SPAN_KIND_SERVER
CLIENT = Span.SPAN_KIND_CLIENT


def _value(value: str | int | float | bool) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def _pairs(attributes: Attributes) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in attributes.items()]


@dataclass(frozen=True)
class Timeline:
    """Turns milliseconds after the trace's start into Unix nanoseconds."""

    start_ns: int

    def at(self, ms: float) -> int:
        """Return the time ``ms`` milliseconds after the start."""
        return self.start_ns + int(ms * MS)


def _span(
    time: Timeline,
    ids: tuple[str, str, str],
    name: str,
    window: tuple[float, float],
    kind: Span.SpanKind.ValueType = Span.SPAN_KIND_INTERNAL,
    attributes: Attributes | None = None,
    status: Status | None = None,
    events: list[Span.Event] | None = None,
) -> Span:
    """Return a span; ``ids`` are its trace, span and parent ids ("" for a root)."""
    trace_id, span_id, parent = ids
    return Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent),
        name=name,
        kind=kind,
        start_time_unix_nano=time.at(window[0]),
        end_time_unix_nano=time.at(window[1]),
        attributes=_pairs(attributes or {}),
        status=status or Status(),
        events=events or [],
    )


def _export(service: str, scope: str, spans: list[Span]) -> ExportTraceServiceRequest:
    """Return one service's export, its resource as the Python SDK describes a process."""
    resource = Resource(
        attributes=_pairs(
            {
                "service.name": service,
                "service.version": "0.1.0",
                "telemetry.sdk.language": "python",
                "telemetry.sdk.name": "opentelemetry",
                "deployment.environment.name": "dev",
            }
        )
    )
    scoped = ScopeSpans(scope=InstrumentationScope(name=scope), spans=spans)
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[scoped])]
    )


def request_exports(start_ns: int) -> list[ExportTraceServiceRequest]:
    """The request trace: ``air-quality``'s three spans, then ``aqi-model``'s own export."""
    time = Timeline(start_ns)
    server: Attributes = {
        "http.request.method": "GET",
        "http.route": "/api/assessment",
        "url.path": "/api/assessment",
        "http.response.status_code": 200,
    }
    client: Attributes = {
        "http.request.method": "GET",
        "server.address": OPEN_METEO,
        "url.full": f"https://{OPEN_METEO}/v1/air-quality?latitude=31.55&longitude=74.34",
        "http.response.status_code": 200,
    }
    model: Attributes = {"model.version": 3, "aqi.forecast_hours": 24}
    t, root = REQUEST_TRACE, REQUEST_SPAN
    spans = [
        _span(time, (t, root, ""), "GET /api/assessment", (0, 120), SERVER, server),
        _span(time, (t, "9b4b0c5e1fd4a1c2", root), "validate", (2, 12)),
        _span(time, (t, CLIENT_SPAN, root), f"GET {OPEN_METEO}", (10, 100), CLIENT, client),
    ]
    predict = _span(time, (t, "b7ad6b7169203331", root), "predict", (100, 115), SERVER, model)
    return [_export(SERVICE, "app.observe", spans), _export(MODEL_SERVICE, "app.model", [predict])]


def error_export(start_ns: int) -> ExportTraceServiceRequest:
    """The failed request: status ERROR, HTTP 500 and the exception that caused it."""
    time = Timeline(start_ns)
    message = "no station near 91.0,0.0"
    exception: Attributes = {
        "exception.type": "ValueError",
        "exception.message": message,
        "exception.stacktrace": "Traceback (most recent call last):\n"
        f'  File "app/stations.py", line 41, in nearest\nValueError: {message}',
    }
    server: Attributes = {
        "http.request.method": "GET",
        "http.route": "/api/assessment",
        "http.response.status_code": 500,
    }
    span = _span(
        time,
        (ERROR_TRACE, "e457b5a2e4d86bd1", ""),
        "GET /api/assessment",
        (0, 8),
        SERVER,
        server,
        Status(code=Status.STATUS_CODE_ERROR, message=f"ValueError: {message}"),
        [Span.Event(name="exception", time_unix_nano=time.at(5), attributes=_pairs(exception))],
    )
    return _export(SERVICE, "app.observe", [span])


def genai_export(start_ns: int) -> ExportTraceServiceRequest:
    """The RAG question: retrieval, then a ``chat`` client span with model and token counts."""
    time = Timeline(start_ns)
    server: Attributes = {
        "http.request.method": "POST",
        "http.route": "/api/ask",
        "http.response.status_code": 200,
    }
    chat: Attributes = {
        "gen_ai.system": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": CHAT_MODEL,
        "gen_ai.response.model": CHAT_MODEL,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.usage.input_tokens": 412,
        "gen_ai.usage.output_tokens": 96,
    }
    t, root = GENAI_TRACE, "a3ce929d0e0e4736"
    spans = [
        _span(time, (t, root, ""), "POST /api/ask", (0, 900), SERVER, server),
        _span(time, (t, "c1b17453995c3f42", root), "retrieve", (5, 40), attributes={"rag.hits": 4}),
        _span(time, (t, GENAI_SPAN, root), f"chat {CHAT_MODEL}", (50, 880), CLIENT, chat),
    ]
    return _export(RAG_SERVICE, "app.generation", spans)


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """Return ``request`` as OTLP/JSON: protobuf's JSON mapping, but ids in hex."""
    document = json_format.MessageToDict(request)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


def send(portal: httpx.Client, request: ExportTraceServiceRequest, how: str = "protobuf") -> None:
    """POST ``request`` to the portal's receiver as ``protobuf``, ``gzip`` or ``json``."""
    headers = {"Content-Type": "application/x-protobuf"}
    body = request.SerializeToString()
    if how == "gzip":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    elif how == "json":
        body = otlp_json(request)
        headers["Content-Type"] = "application/json"
    answer = portal.post("/v1/traces", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    if how != "json":  # every span stored, none cut: no partial success
        response = ExportTraceServiceResponse.FromString(answer.content)
        assert not response.HasField("partial_success"), response


def send_samples(portal: httpx.Client, start_ns: int) -> None:
    """Send the three traces, starting one second apart from ``start_ns``."""
    first, second = request_exports(start_ns)
    send(portal, first)
    send(portal, second)  # the trace's fourth span arrives in a request of its own
    send(portal, error_export(start_ns + 1000 * MS), "gzip")
    send(portal, genai_export(start_ns + 2000 * MS), "json")
