"""HTTP entry point: the API, the health and readiness probes, metrics and traces."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry import propagate, trace
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from .settings import METRICS_ENABLED, SERVICE_NAME, VERSION
from .telemetry import configure_tracing

# Probes and scrapes would drown the traffic the SLO is about, so they are not measured.
UNMEASURED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

tracer = trace.get_tracer(__name__)

REQUESTS = Counter(
    "http_requests",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "code"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time spent serving HTTP requests, by method and route template.",
    ["method", "route"],
)


def _route_label(request: Request) -> str:
    # The route template (e.g. /items/{id}) keeps the label's cardinality bounded.
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Set up tracing, report ready once started, and not ready while shutting down."""
    configure_tracing(SERVICE_NAME)
    app.state.ready = True
    yield
    app.state.ready = False


def _fastapi_options() -> dict[str, Any]:
    # FastAPI releases with built-in OpenTelemetry would start a second, unconnected server
    # span per request; this service's middleware owns request spans on every version.
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def create_app() -> FastAPI:
    """Build the application."""
    app = FastAPI(title=SERVICE_NAME, version=VERSION, lifespan=lifespan, **_fastapi_options())
    app.state.ready = False

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Measure and trace every request but the probes and the scrapes."""
        if request.url.path in UNMEASURED_PATHS:
            return await call_next(request)
        started = time.perf_counter()
        code = "500"
        context = propagate.extract(dict(request.headers))  # the caller's W3C traceparent
        with tracer.start_as_current_span(
            f"{request.method} {request.url.path}", context=context, kind=trace.SpanKind.SERVER
        ) as span:
            try:
                response = await call_next(request)
                code = str(response.status_code)
                return response
            finally:
                route = _route_label(request)
                # Named by the route template, like the metrics: bounded, never the raw path.
                span.update_name(f"{request.method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", int(code))
                if METRICS_ENABLED:
                    REQUESTS.labels(request.method, route, code).inc()
                    LATENCY.labels(request.method, route).observe(time.perf_counter() - started)

    @app.get("/")
    async def index() -> dict[str, str]:
        """Say which service and version answers."""
        return {"service": SERVICE_NAME, "version": VERSION}

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves HTTP."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: started and not shutting down."""
        if getattr(request.app.state, "ready", False):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "starting"}, status_code=503)

    if METRICS_ENABLED:

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            """Prometheus exposition of this process's metrics."""
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


app = create_app()
