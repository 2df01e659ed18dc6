"""Structured logs (one JSON object per line) and OpenTelemetry traces over OTLP/HTTP.

Tracing exports only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-specific
variable) is set; the exporter reads the standard ``OTEL_*`` variables itself. Spans exist
either way, so log lines carry trace and span ids that match the traces.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .settings import VERSION

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_configured: dict[str, Any] = {}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object, with trace ids and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line."""
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = f"{context.trace_id:032x}"
            entry["span_id"] = f"{context.span_id:016x}"
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send the service's logs (and uvicorn's) to stdout as JSON lines, once per process."""
    if "logging" in _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    for name in ("app", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    _configured["logging"] = handler


def exporting(env: Mapping[str, str] | None = None) -> bool:
    """Tell whether an OTLP endpoint is configured."""
    env = os.environ if env is None else env
    keys = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return any(env.get(key) for key in keys) and env.get("OTEL_SDK_DISABLED") != "true"


def configure_tracing(service_name: str) -> TracerProvider:
    """Install the process's tracer provider once; export over OTLP/HTTP when configured."""
    provider = _configured.get("tracing")
    if isinstance(provider, TracerProvider):
        return provider
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", service_name),
            "service.version": VERSION,
        }
    )
    provider = TracerProvider(resource=resource)
    if exporting():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured["tracing"] = provider
    return provider
