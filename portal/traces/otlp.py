"""Decoding an OTLP/HTTP trace export into span rows, and its answers.

A request is protobuf (``application/x-protobuf``) or OTLP/JSON (``application/json``,
where trace and span ids are hex, not base64 as in protobuf's own JSON mapping), maybe
gzipped. Everything is checked before anything is stored: a malformed body, an invalid id,
a span ending before it starts, or too many spans refuse the whole request with a message
naming the span (``resource_spans[0].scope_spans[1].spans[7]``), so no half-batch is stored.
Attribute values over the size limit are cut and marked instead (one long SQL statement
must not cost a batch): :class:`Decoded` counts them, for the answer's partial success.
Values no database column can hold are stored in a form it can, never refused (a retried
export would fail forever): a NUL character becomes U+FFFD (PostgreSQL text cannot hold
it), a NaN or infinite double its OTLP/JSON name, "NaN" or "Infinity" (JSON has no such
numbers).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# No stubs ship with protobuf's runtime or googleapis-common-protos (pyproject is not T1's).
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from portal.traces.models import MAX_INDEXED_VALUE, MAX_NAME

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)
TRUNCATED = "…[truncated]"
UNKNOWN_SERVICE = "unknown_service"
# google.rpc.Code values of the answers' Status.
INVALID_ARGUMENT = 3
PERMISSION_DENIED = 7
UNAUTHENTICATED = 16
NOT_FOUND = 5
_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUSES = {0: "UNSET", 1: "OK", 2: "ERROR"}
_ID_FIELDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8, "trace_id": 16, "span_id": 8}
_ID_FIELDS["parent_span_id"] = 8
_NOT_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


class OtlpError(Exception):
    """A request the receiver refuses: the HTTP status and a message for the exporter."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Decoded:
    """The span rows of one request and the distinct attribute pairs of each trace."""

    spans: list[dict[str, Any]] = field(default_factory=list)
    attributes: set[tuple[str, str, str]] = field(default_factory=set)
    truncated_values: int = 0

    @property
    def services(self) -> set[str]:
        """Return the services the spans belong to (their resource's ``service.name``)."""
        return {span["service"] for span in self.spans}


def media_type(content_type: str) -> str:
    """Return the bare media type of a Content-Type header (lower case, no parameters)."""
    return content_type.split(";")[0].strip().lower()


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Return the body without its Content-Encoding (gzip or none), at most ``limit`` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise OtlpError(415, f"Content-Encoding {encoding!r} is not supported (gzip or none)")
    inflater = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer
    try:
        # max_length: a small bomb never inflates past the limit in memory.
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise OtlpError(400, f"the body is not valid gzip: {exc}") from exc
    if len(data) > limit:
        raise OtlpError(
            413,
            f"the decompressed body is larger than the limit of {limit} bytes "
            "(PORTAL_TRACE_MAX_BODY_BYTES)",
        )
    if not inflater.eof:
        raise OtlpError(400, "the gzip body is truncated")
    return data


def parse(body: bytes, kind: str) -> ExportTraceServiceRequest:
    """Parse an ExportTraceServiceRequest from protobuf or OTLP/JSON bytes."""
    request = ExportTraceServiceRequest()
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError) as exc:
            raise OtlpError(400, f"the body is not an ExportTraceServiceRequest: {exc}") from exc
        return request
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise OtlpError(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise OtlpError(400, "the body must be a JSON object (an ExportTraceServiceRequest)")
    try:
        json_format.ParseDict(_ids_to_base64(document, "$"), request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise OtlpError(400, f"the body is not an OTLP/JSON trace export: {exc}") from exc
    return request


def _ids_to_base64(node: Any, where: str) -> Any:
    """Turn OTLP/JSON's hex ids into the base64 protobuf's JSON mapping expects."""
    if isinstance(node, list):
        return [_ids_to_base64(item, f"{where}[{index}]") for index, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key in _ID_FIELDS and isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raise OtlpError(400, f"{where}.{key}: {value[:40]!r} is not hex") from None
            converted[key] = base64.b64encode(raw).decode()
        else:
            converted[key] = _ids_to_base64(value, f"{where}.{key}")
    return converted


def decode(request: ExportTraceServiceRequest, max_spans: int, max_value_bytes: int) -> Decoded:
    """Check every span of ``request`` and return the rows to store (or raise OtlpError)."""
    count = sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
    if count > max_spans:
        raise OtlpError(
            400,
            f"the request carries {count} spans, more than the limit of {max_spans} "
            "(PORTAL_TRACE_MAX_SPANS): send smaller batches",
        )
    decoded = Decoded()
    for r_index, resource_spans in enumerate(request.resource_spans):
        resource = _attributes(resource_spans.resource.attributes, max_value_bytes, decoded)
        service = str(resource.get("service.name") or UNKNOWN_SERVICE)[:MAX_NAME]
        indexed: set[str] = set()  # traces this resource's pairs are recorded for
        for s_index, scope_spans in enumerate(resource_spans.scope_spans):
            for index, span in enumerate(scope_spans.spans):
                where = f"resource_spans[{r_index}].scope_spans[{s_index}].spans[{index}]"
                row = _row(span, where, service, resource, max_value_bytes, decoded)
                decoded.spans.append(row)
                trace_id = row["trace_id"]
                _index_pairs(decoded, trace_id, row["attributes"])
                if trace_id not in indexed:
                    indexed.add(trace_id)
                    _index_pairs(decoded, trace_id, resource)
    return decoded


def _row(
    span: OtlpSpan,
    where: str,
    service: str,
    resource: dict[str, Any],
    max_value_bytes: int,
    decoded: Decoded,
) -> dict[str, Any]:
    trace_id = _id(span.trace_id, 16, f"{where}.trace_id")
    span_id = _id(span.span_id, 8, f"{where}.span_id")
    parent = _id(span.parent_span_id, 8, f"{where}.parent_span_id") if span.parent_span_id else None
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if start == 0 or end == 0:
        raise OtlpError(400, f"{where}: start_time_unix_nano and end_time_unix_nano are required")
    if end < start:
        raise OtlpError(
            400,
            f"{where} (trace {trace_id}, span {span_id}): ends {start - end} ns before it "
            "starts (end_time_unix_nano < start_time_unix_nano; a skewed clock?)",
        )
    # BIGINT is signed: past year 2262 the nanoseconds do not fit.
    if end >= 1 << 63:
        raise OtlpError(400, f"{where}: end_time_unix_nano {end} is out of range")
    status = span.status
    events = [
        {
            "name": _name(event.name),
            "time_ns": event.time_unix_nano,
            "attributes": _attributes(event.attributes, max_value_bytes, decoded),
        }
        for event in span.events
    ]
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "service": service,
        "name": _name(span.name),
        "kind": _KINDS.get(span.kind, "UNSPECIFIED"),
        "start_ns": start,
        "end_ns": end,
        "duration_ns": end - start,
        "status": _STATUSES.get(status.code, "UNSET"),
        "status_message": _cut(status.message, max_value_bytes, decoded),
        "attributes": _attributes(span.attributes, max_value_bytes, decoded),
        "resource": resource,
        "events": events,
    }


def _id(raw: bytes, size: int, where: str) -> str:
    """Return a trace or span id as lower-case hex; refuse a wrong length or all zeros."""
    if len(raw) != size:
        raise OtlpError(
            400,
            f"{where}: an id of {len(raw)} bytes; it must be {size} bytes ({size * 2} hex digits)",
        )
    if not any(raw):
        raise OtlpError(400, f"{where}: the id is all zeros (invalid in OpenTelemetry)")
    return binascii.hexlify(raw).decode()


def _attributes(pairs: Iterable[KeyValue], limit: int, decoded: Decoded) -> dict[str, Any]:
    return {_name(pair.key): _value(pair.value, limit, decoded) for pair in pairs}


def _value(value: AnyValue, limit: int, decoded: Decoded) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _cut(value.string_value, limit, decoded)
    if kind == "bytes_value":
        return _cut(base64.b64encode(value.bytes_value).decode(), limit, decoded)
    if kind == "array_value":
        return [_value(item, limit, decoded) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values, limit, decoded)
    if kind is None:
        return None
    if kind == "double_value" and not math.isfinite(value.double_value):
        return _NOT_FINITE[str(value.double_value)]
    return getattr(value, kind)


def _name(text: str) -> str:
    """Return a key or name within MAX_NAME characters, without NUL."""
    text = text[:MAX_NAME]
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _cut(text: str, limit: int, decoded: Decoded) -> str:
    """Return ``text`` within ``limit`` UTF-8 bytes (marked when it had to be cut), without NUL."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    # A character is at most 4 bytes of UTF-8: short values need no encoding to be measured.
    if len(text) * 4 <= limit:
        return text
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return text
    decoded.truncated_values += 1
    keep = limit - len(TRUNCATED.encode())
    return encoded[:keep].decode("utf-8", "ignore") + TRUNCATED


def _index_pairs(decoded: Decoded, trace_id: str, attributes: dict[str, Any]) -> None:
    """Remember the searchable ``key=value`` pairs (scalars short enough to index)."""
    for key, value in attributes.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            continue
        if len(text) <= MAX_INDEXED_VALUE:
            decoded.attributes.add((trace_id, key, text))


def success(kind: str, decoded: Decoded) -> bytes:
    """Return the 200 answer: an ExportTraceServiceResponse, with a warning when values were cut.

    OTLP's partial success with ``rejected_spans`` 0 and a message is a warning: every span
    was stored, some attribute values shortened.
    """
    response = ExportTraceServiceResponse()
    if decoded.truncated_values:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(
                rejected_spans=0,
                error_message=f"{decoded.truncated_values} attribute values were longer than "
                "the portal's limit (PORTAL_TRACE_MAX_ATTRIBUTE_BYTES) and were truncated",
            )
        )
    return _encode(response, kind)


def failure(kind: str, code: int, message: str) -> bytes:
    """Return an error answer's body: a google.rpc.Status in the request's encoding."""
    return _encode(Status(code=code, message=message), kind)


def _encode(message: Any, kind: str) -> bytes:
    if kind == JSON:
        text: str = json_format.MessageToJson(message, indent=None)
        return text.encode()
    data: bytes = message.SerializeToString()
    return data
