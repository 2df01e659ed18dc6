"""A loopback OTLP/HTTP trace receiver: what a service exports, decoded, for a test to read.

It answers ``POST /v1/traces`` (protobuf, optionally gzip) as a collector would and keeps
every span with its resource's attributes. Real protocol, real SDK on the other side.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.loopback_http import serving

SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_SERVER


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, flattened: ids in hex, attributes as plain values."""

    name: str
    kind: int
    trace_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


def _value(value: AnyValue) -> Any:
    field = value.WhichOneof("value")
    return None if field is None else getattr(value, field)


def _attributes(items: Iterable[KeyValue]) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items}


class Receiver:
    """The spans received so far; :meth:`wait_for` polls until one matches."""

    def __init__(self, port: int, spans: list[ReceivedSpan], lock: threading.Lock) -> None:
        self.endpoint = f"http://127.0.0.1:{port}"
        self._spans = spans
        self._lock = lock

    def spans(self) -> list[ReceivedSpan]:
        """Return a copy of every span received so far."""
        with self._lock:
            return list(self._spans)

    def wait_for(
        self, matches: Callable[[ReceivedSpan], bool], timeout: float = 15.0
    ) -> ReceivedSpan:
        """Return the first span that ``matches``; fail after ``timeout`` seconds without one."""
        deadline = time.monotonic() + timeout
        while True:
            found = [span for span in self.spans() if matches(span)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                names = [span.name for span in self.spans()]
                raise AssertionError(f"no matching span within {timeout}s; received {names}")
            time.sleep(0.1)


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """Receive OTLP/HTTP traces on 127.0.0.1 (a free port); yield the receiver."""
    spans: list[ReceivedSpan] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_response(404)
                self.end_headers()
                return
            request = ExportTraceServiceRequest.FromString(body)
            received = [
                ReceivedSpan(
                    name=span.name,
                    kind=span.kind,
                    trace_id=span.trace_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    attributes=_attributes(span.attributes),
                    resource=_attributes(resource_spans.resource.attributes),
                )
                for resource_spans in request.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            ]
            with lock:
                spans.extend(received)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Handler, name="otlp-receiver") as port:
        yield Receiver(port, spans, lock)
