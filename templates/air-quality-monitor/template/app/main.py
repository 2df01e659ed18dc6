"""HTTP entry point: ``create_app`` assembles the service; ``app`` is what uvicorn serves.

The routes live beside it: :mod:`.pages` (the page and the manual check), :mod:`.api` (the
JSON API and training), :mod:`.probes` (health, readiness, metrics); :mod:`.observe` measures
and traces every request, and the lifespan here starts and stops the monitor (and, when
``MLFLOW_TRACKING_URI`` is set, opens the model registry and loads a pinned version).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import api, metrics, pages, probes
from .model_record import ModelRegistry, RegistryError
from .model_store import ModelStore
from .monitor import Clock, Monitor
from .observe import observe
from .settings import VERSION, Settings
from .telemetry import configure_logging, configure_tracing

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _fastapi_options() -> dict[str, Any]:
    # FastAPI releases with built-in OpenTelemetry would start a second, unconnected server
    # span per request; this service's middleware owns request spans on every version.
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def open_registry(settings: Settings) -> ModelRegistry | None:
    """Return the MLflow registry when ``MLFLOW_TRACKING_URI`` is set (None otherwise)."""
    if not settings.mlflow_tracking_uri:
        return None
    from .registry import MlflowRegistry  # the MLflow client loads only when it is used

    try:
        return MlflowRegistry(settings)
    except RegistryError as error:  # the service runs on; a pinned version then never loads
        metrics.REGISTRY_ERRORS.labels("connect").inc()
        logger.warning("model registry not used: %s", error)
        return None


def lifespan_of(
    settings: Settings, clock: Clock | None, transport: httpx.AsyncBaseTransport | None
) -> Lifespan:
    """Return the lifespan: load stored models, then refresh and retrain in the background."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        configure_tracing(settings.service_name)
        client = httpx.AsyncClient(
            transport=transport,
            headers={"User-Agent": f"{settings.service_name}/{VERSION}"},
            follow_redirects=False,
        )
        registry = await asyncio.to_thread(open_registry, settings)
        store = ModelStore(settings.model_dir)
        monitor = Monitor(settings, client, store, clock=clock, registry=registry)
        await asyncio.to_thread(monitor.load_stored_models)
        metrics.DATA_AGE.set_function(lambda: monitor.age_seconds() or 0.0)
        app.state.monitor = monitor
        tasks = [asyncio.create_task(monitor.run())] if settings.background_refresh else []
        if monitor.pinned:  # not ready until the pinned version is served; retried till then
            tasks.append(asyncio.create_task(monitor.keep_loading_pin()))
        logger.info("started", extra={"city": settings.city, "pollutants": settings.pollutants})
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            app.state.monitor = None
            await client.aclose()

    return lifespan


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the application; nothing is fetched or started until its lifespan begins."""
    settings = settings or Settings.from_env()
    app = FastAPI(
        title=settings.service_name,
        version=VERSION,
        lifespan=lifespan_of(settings, clock, transport),
        **_fastapi_options(),
    )
    app.state.monitor = None
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.middleware("http")(observe)
    for module in (pages, api, probes):
        app.include_router(module.router)
    return app


app = create_app()
