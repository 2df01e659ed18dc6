"""Every request but the probes and static files: measured, traced, logged, given headers."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from opentelemetry import propagate, trace

from . import metrics

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
# Probes and scrapes would drown the traffic the availability SLO is about.
UNMEASURED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _route_label(request: Request) -> str:
    # The route template (e.g. /api/history) keeps the label's cardinality bounded.
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


async def observe(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """HTTP middleware: a server span, request metrics, an access log line, security headers."""
    if request.url.path in UNMEASURED_PATHS or request.url.path.startswith("/static/"):
        return await call_next(request)
    started = time.perf_counter()
    code = "500"
    context = propagate.extract(dict(request.headers))
    with tracer.start_as_current_span(
        f"{request.method} {request.url.path}", context=context, kind=trace.SpanKind.SERVER
    ) as span:
        try:
            response = await call_next(request)
            code = str(response.status_code)
            for header, value in SECURITY_HEADERS.items():
                response.headers.setdefault(header, value)
            return response
        finally:
            route = _route_label(request)
            span.update_name(f"{request.method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", int(code))
            elapsed = time.perf_counter() - started
            metrics.REQUESTS.labels(request.method, route, code).inc()
            metrics.LATENCY.labels(request.method, route).observe(elapsed)
            logger.info(
                "%s %s %s",
                request.method,
                route,
                code,
                extra={"duration_ms": round(elapsed * 1000, 1)},
            )
