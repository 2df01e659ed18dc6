"""Building OTLP trace exports for the receiver's tests and benchmarks/traces.py."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

BASE_NS = 1_800_000_000_000_000_000  # 2027-01-15: inside any test's retention window


@dataclass
class SpanSpec:
    """One span to export: ids in hex, times in ns, attributes as str/int/bool."""

    trace_id: str
    span_id: str
    name: str = "GET /api/air-quality"
    parent_span_id: str = ""
    start_ns: int = BASE_NS
    end_ns: int = BASE_NS + 5_000_000
    error: bool = False
    attributes: dict[str, str | int | bool] = field(default_factory=dict)


def new_trace_id() -> str:
    """Return a random trace id (hex)."""
    return secrets.token_hex(16)


def new_span_id() -> str:
    """Return a random span id (hex)."""
    return secrets.token_hex(8)


def _value(value: str | int | bool) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    return AnyValue(string_value=value)


def export(service: str, spans: Sequence[SpanSpec]) -> ExportTraceServiceRequest:
    """Return an export of ``spans``, all of one service's resource."""
    otlp_spans = [
        Span(
            trace_id=bytes.fromhex(spec.trace_id),
            span_id=bytes.fromhex(spec.span_id),
            parent_span_id=bytes.fromhex(spec.parent_span_id),
            name=spec.name,
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=spec.start_ns,
            end_time_unix_nano=spec.end_ns,
            status=Status(code=Status.STATUS_CODE_ERROR if spec.error else Status.STATUS_CODE_OK),
            attributes=[KeyValue(key=k, value=_value(v)) for k, v in spec.attributes.items()],
        )
        for spec in spans
    ]
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=otlp_spans)])
        ]
    )


def batch(service: str, count: int, spans_per_trace: int = 8, start_ns: int = BASE_NS) -> bytes:
    """Return a serialized export of ``count`` spans in traces of ``spans_per_trace``."""
    specs: list[SpanSpec] = []
    while len(specs) < count:
        trace_id = new_trace_id()
        root = new_span_id()
        for index in range(min(spans_per_trace, count - len(specs))):
            specs.append(
                SpanSpec(
                    trace_id=trace_id,
                    span_id=root if index == 0 else new_span_id(),
                    parent_span_id="" if index == 0 else root,
                    name="GET /api/air-quality" if index == 0 else f"query {index}",
                    start_ns=start_ns + index * 1000,
                    end_ns=start_ns + 1_000_000 + index * 1000,
                    attributes={"http.route": "/api/air-quality", "index": index},
                )
            )
    data: bytes = export(service, specs).SerializeToString()
    return data
