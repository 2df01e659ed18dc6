"""HTTP entry point: the page, the manual check, the JSON API, probes and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from opentelemetry import propagate, trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import metrics
from .assessment import UNIT, Verdict
from .check_form import PLAUSIBLE_MAX, CheckInput, parse_check
from .model_store import ModelStore
from .monitor import Clock, Monitor, NoDataError, Snapshot, TrainingBusyError
from .serialize import ATTRIBUTION, assessment_json, forecast_json, history_json, verdict_json
from .settings import VERSION, Settings
from .telemetry import configure_logging, configure_tracing
from .training import NotEnoughDataError

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
HERE = Path(__file__).parent
UNMEASURED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def age_text(seconds: float | None) -> str:
    """Say how old the data is, as a person would."""
    if seconds is None:
        return "never"
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{round(seconds / 60)} minutes ago"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} hours ago"
    return f"{round(seconds / 86400)} days ago"


def amount(value: float | None) -> str:
    """Format a concentration for reading: 2 significant figures at most, '–' when missing."""
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["amount"] = amount


def _route_label(request: Request) -> str:
    # The route template (e.g. /api/history) keeps the label's cardinality bounded.
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _monitor(request: Request) -> Monitor:
    monitor = getattr(request.app.state, "monitor", None)
    if not isinstance(monitor, Monitor):
        raise RuntimeError("the service is not started")
    return monitor


def _unavailable(monitor: Monitor) -> JSONResponse:
    reason = monitor.last_error.reason if monitor.last_error else "no data fetched yet"
    return JSONResponse({"error": True, "reason": reason}, status_code=503)


def _wants_fragment(request: Request) -> bool:
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def _page(
    request: Request,
    monitor: Monitor,
    snapshot: Snapshot | None,
    check: CheckInput | None = None,
    verdict: Verdict | None = None,
) -> HTMLResponse:
    settings = monitor.settings
    if check is None:
        prefill = {}
        for reading in snapshot.readings if snapshot else ():
            prefill[reading.pollutant] = "" if reading.value is None else f"{reading.value:.1f}"
        check = CheckInput(prefill, {}, {})
    context: dict[str, Any] = {
        "settings": settings,
        "snapshot": snapshot,
        "age": age_text(monitor.age_seconds()),
        "fresh": monitor.is_fresh(),
        "error": monitor.last_error,
        "check": check,
        "check_verdict": verdict,
        "plausible_max": PLAUSIBLE_MAX,
        "unit": UNIT,
        "attribution": ATTRIBUTION,
        "version": VERSION,
    }
    status = 200 if snapshot is not None else 503
    return templates.TemplateResponse(request, "index.html", context, status_code=status)


async def _submitted(request: Request) -> dict[str, object]:
    """Read a form (urlencoded) or JSON object body without a multipart parser."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in fields.items()}


def _authorised(request: Request, token: str) -> bool:
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def _fastapi_options() -> dict[str, Any]:
    # FastAPI releases with built-in OpenTelemetry would start a second, unconnected server
    # span per request; this service's middleware owns request spans on every version.
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the application; nothing is fetched or started until its lifespan begins."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        configure_tracing(settings.service_name)
        client = httpx.AsyncClient(
            transport=transport,
            headers={"User-Agent": f"{settings.service_name}/{VERSION}"},
            follow_redirects=False,
        )
        monitor = Monitor(settings, client, ModelStore(settings.model_dir), clock=clock)
        await asyncio.to_thread(monitor.load_stored_models)
        metrics.DATA_AGE.set_function(lambda: monitor.age_seconds() or 0.0)
        app.state.monitor = monitor
        task = asyncio.create_task(monitor.run()) if settings.background_refresh else None
        logger.info("started", extra={"city": settings.city, "pollutants": settings.pollutants})
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            app.state.monitor = None
            await client.aclose()

    app = FastAPI(
        title=settings.service_name, version=VERSION, lifespan=lifespan, **_fastapi_options()
    )
    app.state.monitor = None
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
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

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        """Render the page: verdict, pollutants, 10-day charts, forecast and the manual check."""
        monitor = _monitor(request)
        return _page(request, monitor, await monitor.current())

    @app.post("/check", response_class=HTMLResponse)
    async def check_page(request: Request) -> HTMLResponse:
        """Answer the manual check: the verdict fragment for htmx, else the whole page."""
        monitor = _monitor(request)
        snapshot = await monitor.current()  # the check uses the model of the current data
        check = parse_check(await _submitted(request), monitor.settings.pollutants)
        verdict = monitor.check(check.values) if check.valid else None
        metrics.MANUAL_CHECKS.labels(verdict.level.value if verdict else "invalid").inc()
        if _wants_fragment(request):
            # 200 even with field messages: they are the answer htmx swaps in (a 4xx would
            # not be swapped, and browsers log it as a failed load).
            context = {"check": check, "check_verdict": verdict, "settings": monitor.settings}
            response = templates.TemplateResponse(request, "_check_fragment.html", context)
        else:
            response = _page(request, monitor, snapshot, check, verdict)
            if not check.valid:
                response.status_code = 422
        response.headers["Vary"] = "HX-Request"
        return response

    @app.get("/api/assessment")
    async def api_assessment(request: Request) -> JSONResponse:
        """Return the current verdict and each pollutant against the WHO guideline."""
        monitor = _monitor(request)
        snapshot = await monitor.current()
        if snapshot is None:
            return _unavailable(monitor)
        return JSONResponse(assessment_json(monitor, snapshot))

    @app.get("/api/history")
    async def api_history(request: Request, days: int = Query(9, ge=1, le=9)) -> JSONResponse:
        """Daily averages of the last ``days`` days (1 to 9, today so far included)."""
        monitor = _monitor(request)
        snapshot = await monitor.current()
        if snapshot is None:
            return _unavailable(monitor)
        return JSONResponse(history_json(monitor, snapshot, days))

    @app.get("/api/forecast")
    async def api_forecast(request: Request) -> JSONResponse:
        """Tomorrow's average per pollutant: the service's model and the CAMS forecast."""
        monitor = _monitor(request)
        snapshot = await monitor.current()
        if snapshot is None:
            return _unavailable(monitor)
        return JSONResponse(forecast_json(monitor, snapshot))

    @app.post("/api/check")
    async def api_check(request: Request) -> JSONResponse:
        """Judge concentrations sent as JSON ``{"pm2_5": 12.5, ...}`` (µg/m³)."""
        monitor = _monitor(request)
        await monitor.current()  # the check uses the model of the current data
        check = parse_check(await _submitted(request), monitor.settings.pollutants)
        if not check.valid:
            metrics.MANUAL_CHECKS.labels("invalid").inc()
            return JSONResponse({"error": True, "errors": dict(check.errors)}, status_code=422)
        verdict = monitor.check(check.values)
        metrics.MANUAL_CHECKS.labels(verdict.level.value).inc()
        model = monitor.models.version if monitor.models else None
        return JSONResponse({"verdict": verdict_json(verdict), "model_version": model})

    @app.get("/api/model")
    async def api_model(request: Request) -> JSONResponse:
        """Return the card of the model in use (read by the portal's model registry)."""
        monitor = _monitor(request)
        if monitor.models is None:
            reason = "no model trained yet"
            return JSONResponse({"error": True, "reason": reason}, status_code=503)
        return JSONResponse(dict(monitor.models.card))

    @app.post("/train")
    async def train(request: Request) -> JSONResponse:
        """Retrain now on the latest data; answers the new model's card."""
        monitor = _monitor(request)
        if not _authorised(request, monitor.settings.train_token):
            return JSONResponse({"error": True, "reason": "a valid token is required"}, 401)
        try:
            trained = await monitor.train()
        except TrainingBusyError as error:
            return JSONResponse({"error": True, "reason": str(error)}, status_code=409)
        except (NoDataError, NotEnoughDataError) as error:
            return JSONResponse({"error": True, "reason": str(error)}, status_code=503)
        return JSONResponse(dict(trained.card))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves HTTP."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: data and a model are loaded."""
        monitor = getattr(request.app.state, "monitor", None)
        if isinstance(monitor, Monitor) and monitor.ready and monitor.models is not None:
            return JSONResponse({"status": "ready", "model_version": monitor.models.version})
        missing = "not started"
        if isinstance(monitor, Monitor):
            missing = "no data yet" if monitor.snapshot is None else "no model yet"
        return JSONResponse({"status": "starting", "missing": missing}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """Prometheus exposition of this process's metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


app = create_app()
