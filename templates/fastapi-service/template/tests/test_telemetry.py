"""Traces: one server span per request, joined to the caller's trace."""

from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.settings import SERVICE_NAME
from app.telemetry import configure_tracing, exporting

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def test_requests_are_server_spans_of_the_callers_trace(client: TestClient) -> None:
    """A request is a server span named by its route, continuing the W3C traceparent."""
    exporter = InMemorySpanExporter()
    configure_tracing(SERVICE_NAME).add_span_processor(SimpleSpanProcessor(exporter))
    client.get("/", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    client.get("/healthz")  # probes are not traced
    client.get("/no/such/page")
    first, missing = exporter.get_finished_spans()
    assert (first.name, first.kind) == ("GET /", trace.SpanKind.SERVER)
    assert dict(first.attributes or {})["http.response.status_code"] == 200
    assert f"{first.context.trace_id:032x}" == CALLER_TRACE
    assert first.parent is not None
    assert f"{first.parent.span_id:016x}" == CALLER_SPAN
    assert missing.name == "GET unmatched"  # the raw path never names a span
    assert dict(missing.attributes or {})["http.route"] == "unmatched"
    assert first.resource.attributes["service.name"] == SERVICE_NAME
    exporter.clear()


def test_exporting_follows_the_otlp_environment() -> None:
    """Traces leave the process only when an OTLP endpoint is configured."""
    assert not exporting({})
    assert exporting({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert exporting({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    assert not exporting(disabled)
