"""End to end: the real OpenTelemetry SDK exports over OTLP/HTTP to a live portal.

Both of the SDK's encodings (protobuf, gzip) reach the store, and the spans arrive nested
as the SDK made them.
"""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from portal.config import Settings
from portal.db import make_engine
from portal.integrations.trace_source import TraceQuery
from portal.traces.source import EmbeddedTraceSource
from tests.browser_server import live_server


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_sdk_spans_arrive_nested(settings: Settings, compression: Compression) -> None:
    with live_server(settings) as url:
        exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=compression)
        provider = TracerProvider(resource=Resource.create({"service.name": "air-quality"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("test")
        with (
            tracer.start_as_current_span("GET /api/air-quality") as request_span,
            tracer.start_as_current_span("GET open-meteo") as client_span,
        ):
            client_span.set_attribute("http.status_code", 503)
            client_span.set_status(Status(StatusCode.ERROR, "upstream down"))
            client_span.add_event("retry", {"attempt": 2})
        provider.shutdown()
        # The spans are stored once the export returned: SimpleSpanProcessor is synchronous.
        engine = make_engine(settings)
        try:
            source = EmbeddedTraceSource(engine)
            [summary] = source.search(TraceQuery(service="air-quality"))
            trace_id = format(request_span.get_span_context().trace_id, "032x")
            assert summary.trace_id == trace_id
            assert (summary.root_operation, summary.span_count, summary.error) == (
                "GET /api/air-quality",
                2,
                True,
            )
            trace = source.trace(trace_id)
            assert trace is not None
            root, child = trace.spans
            assert root.parent_span_id is None
            assert child.parent_span_id == root.span_id
            assert (child.name, child.status, child.status_message) == (
                "GET open-meteo",
                "ERROR",
                "upstream down",
            )
            assert child.attributes == {"http.status_code": 503}
            assert [(event.name, dict(event.attributes)) for event in child.events] == [
                ("retry", {"attempt": 2})
            ]
            assert root.resource["service.name"] == "air-quality"
        finally:
            engine.dispose()
