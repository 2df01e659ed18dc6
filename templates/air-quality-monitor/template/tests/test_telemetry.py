"""Traces for requests and Open-Meteo calls, and structured JSON logs."""

from __future__ import annotations

import json
import logging

from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.settings import Settings
from app.telemetry import JsonFormatter, configure_tracing, exporting


def test_requests_and_open_meteo_calls_are_traced(client: TestClient, settings: Settings) -> None:
    """A page view is a server span; the fetch inside it a client span of the same trace."""
    exporter = InMemorySpanExporter()
    configure_tracing(settings.service_name).add_span_processor(SimpleSpanProcessor(exporter))
    client.get("/api/assessment")
    spans = {span.name: span for span in exporter.get_finished_spans()}
    server = spans["GET /api/assessment"]
    fetch = spans["open-meteo air-quality"]
    assert server.kind == trace.SpanKind.SERVER and fetch.kind == trace.SpanKind.CLIENT
    assert fetch.context.trace_id == server.context.trace_id
    assert fetch.attributes is not None and fetch.attributes["http.response.status_code"] == 200
    assert server.attributes is not None and server.attributes["http.route"] == "/api/assessment"
    exporter.clear()


def test_exporting_follows_the_otlp_environment() -> None:
    """Traces leave the process only when an OTLP endpoint is configured."""
    assert not exporting({})
    assert exporting({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert exporting({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    assert not exporting(disabled)


def test_log_lines_are_json_with_trace_ids_and_extra_fields(settings: Settings) -> None:
    """One JSON object per line, carrying the active trace and any ``extra`` fields."""
    configure_tracing(settings.service_name)
    record = logging.LogRecord("app.x", logging.WARNING, __file__, 1, "fetch %s", ("failed",), None)
    record.kind = "rate_limited"
    with trace.get_tracer("test").start_as_current_span("work") as span:
        line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "fetch failed" and line["level"] == "warning"
    assert line["kind"] == "rate_limited" and line["logger"] == "app.x"
    assert line["trace_id"] == f"{span.get_span_context().trace_id:032x}"
