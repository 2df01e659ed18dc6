"""OpenTelemetry traces over OTLP/HTTP, configured from the standard ``OTEL_*`` variables.

Spans are exported only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-specific
variable) is set; the exporter reads the other variables (headers, timeout, compression)
itself, and ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the service.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .settings import VERSION

_configured: dict[str, TracerProvider] = {}


def exporting(env: Mapping[str, str] | None = None) -> bool:
    """Tell whether an OTLP endpoint is configured (and the SDK not disabled)."""
    env = os.environ if env is None else env
    keys = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return any(env.get(key) for key in keys) and env.get("OTEL_SDK_DISABLED") != "true"


def configure_tracing(service_name: str) -> TracerProvider:
    """Install the process's tracer provider once; export over OTLP/HTTP when configured."""
    provider = _configured.get("tracing")
    if provider is not None:
        return provider
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", service_name),
            "service.version": VERSION,
        }
    )
    provider = TracerProvider(resource=resource)
    if exporting():
        # Imported only when used: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured["tracing"] = provider
    return provider
