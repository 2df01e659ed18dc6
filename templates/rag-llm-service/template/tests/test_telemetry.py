"""Traces of requests and answers, and structured JSON logs."""

from __future__ import annotations

import json
import logging

from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.telemetry import JsonFormatter, configure_tracing, exporting

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def test_requests_are_server_spans_of_the_callers_trace(
    client: TestClient, spans: InMemorySpanExporter
) -> None:
    """A request is a server span named by its route, continuing the W3C traceparent."""
    spans.clear()
    client.get("/api/prompts", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    client.get("/healthz")  # probes are not traced
    client.get("/no/such/page")
    first, missing = spans.get_finished_spans()
    assert (first.name, first.kind) == ("GET /api/prompts", trace.SpanKind.SERVER)
    assert dict(first.attributes or {})["http.response.status_code"] == 200
    assert f"{first.context.trace_id:032x}" == CALLER_TRACE
    assert first.parent is not None and f"{first.parent.span_id:016x}" == CALLER_SPAN
    assert missing.name == "GET unmatched"  # the raw path never names a span


def test_an_answer_is_retrieve_embed_and_chat_spans_under_the_request(
    client: TestClient, spans: InMemorySpanExporter
) -> None:
    """Spans retrieve > embed, then the chat span (here the extractive answerer), in one trace."""
    spans.clear()
    client.post("/api/ask", json={"question": "How do I suspend flux?"})
    found = {span.name: span for span in spans.get_finished_spans()}
    request, retrieve = found["POST /api/ask"], found["retrieve"]
    embed, chat = found["embed"], found["chat extractive"]
    assert {span.context.trace_id for span in found.values()} == {request.context.trace_id}
    assert retrieve.parent is not None and retrieve.parent.span_id == request.context.span_id
    assert embed.parent is not None and embed.parent.span_id == retrieve.context.span_id
    assert chat.parent is not None and chat.parent.span_id == request.context.span_id
    assert chat.kind == trace.SpanKind.CLIENT
    attributes = dict(chat.attributes or {})
    assert attributes["gen_ai.system"] == "extractive"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert (attributes["rag.prompt.name"], attributes["rag.prompt.version"]) == ("qa", 1)


def test_exporting_follows_the_otlp_environment() -> None:
    """Traces leave the process only when an OTLP endpoint is configured."""
    assert not exporting({})
    assert exporting({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert exporting({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    assert not exporting(disabled)


def test_log_lines_are_json_with_trace_ids_and_extra_fields() -> None:
    """One JSON object per line, carrying the active trace and any ``extra`` fields."""
    configure_tracing("assistant-test")
    record = logging.LogRecord("app.x", logging.WARNING, __file__, 1, "llm %s", ("failed",), None)
    record.reason = "timeout"
    with trace.get_tracer("test").start_as_current_span("work") as span:
        line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "llm failed" and line["level"] == "warning"
    assert line["reason"] == "timeout" and line["logger"] == "app.x"
    assert line["trace_id"] == f"{span.get_span_context().trace_id:032x}"
