"""HTTP entry point: ``create_app`` assembles the service; ``app`` is what uvicorn serves.

The routes live beside it: :mod:`.pages` (the page), :mod:`.api` (training, detection,
model cards), :mod:`.proposals` (the remediations list) and :mod:`.probes` (health,
readiness, metrics); :mod:`.observe` measures and traces every request. The lifespan here
loads the remediation rules (a file with a problem stops the start, every problem listed
with its line and field), then the stored models (or, pinned to a model-registry version,
fetches that version in the background), and runs the background evaluation, which hands
each anomaly window to remediation.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import api, errors, pages, probes, proposals
from .mlflow_log import MlflowRegistry
from .model_store import ModelStore
from .monitor import Evaluator
from .observe import observe
from .prometheus import PrometheusRangeSource, RangeSource
from .proposals import PortalClient, PrometheusState, Remediations
from .registry import Registry
from .remediation import Remediator
from .rules import RulesError, load_rules_file
from .runtime import Clock, Runtime
from .serving import ServingState
from .settings import VERSION, Settings, SettingsError
from .telemetry import configure_logging, configure_tracing
from .versioning import Versioning

HERE = Path(__file__).parent
logger = logging.getLogger(__name__)
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _fastapi_options() -> dict[str, Any]:
    # FastAPI releases with built-in OpenTelemetry would start a second, unconnected server
    # span per request; this service's middleware owns request spans on every version.
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def _now() -> datetime:
    return datetime.now(UTC)


def lifespan_of(
    settings: Settings,
    prometheus: RangeSource | None,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None,
) -> Lifespan:
    """Return the lifespan: load the rules and the models, then evaluate in the background."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        configure_tracing(settings.service_name)
        try:
            rules = await asyncio.to_thread(load_rules_file, settings.remediation_file)
        except RulesError as error:
            # Refuse to start: the rollout stalls and the previous pods keep serving.
            logger.error("remediation rules refused", extra={"problems": error.problems})
            raise
        source = prometheus or PrometheusRangeSource(
            settings.prometheus_url,
            timeout_seconds=settings.http_timeout_seconds,
            attempts=settings.max_attempts,
            backoff_seconds=settings.retry_backoff_seconds,
        )
        client = httpx.AsyncClient(transport=transport)
        portal = None
        if settings.portal_token:  # without a token nothing can be sent: a dry run
            portal = PortalClient(settings.portal_url, settings.portal_token, client)
        state = PrometheusState(settings.prometheus_url, client, rules.state.environment_label)
        remediations = Remediations(Remediator(rules, clock), state, portal)
        registry = Registry(ModelStore(settings.model_dir))
        serving = ServingState(settings.registered_model, settings.model_version)
        versioning = None
        if settings.mlflow_tracking_uri:
            tracking = MlflowRegistry(settings.mlflow_tracking_uri, settings.registered_model)
            versioning = Versioning(settings, tracking, serving)
        if settings.pinned and versioning is None:
            raise SettingsError("MODEL_VERSION pins a registry version: set MLFLOW_TRACKING_URI")
        tasks: list[asyncio.Task[None]] = []
        loaded = 0
        if versioning is not None and settings.pinned:
            # Never the volume's models: only the pinned version, once it is verified.
            tasks.append(asyncio.create_task(versioning.keep_loading(registry)))
        else:
            loaded = await asyncio.to_thread(registry.load_stored)
            serving.trained(registry.all(), None)
        runtime = Runtime(settings, registry, source, clock, remediations, serving, versioning)
        if settings.background_detect:
            tasks.append(asyncio.create_task(Evaluator(runtime).run()))
        app.state.runtime = runtime
        app.state.remediations = remediations
        logger.info(
            "started",
            extra={
                "models": loaded,
                "prometheus": settings.prometheus_url,
                "rules": len(rules.rules),
                "remediation_file": str(settings.remediation_file),
                "dry_run": remediations.dry_run,
                "model_registry": settings.mlflow_tracking_uri or None,
                "pinned_version": settings.model_version or None,
            },
        )
        try:
            yield
        finally:
            app.state.runtime = None
            app.state.remediations = None
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await client.aclose()
            if prometheus is None:
                source.close()

    return lifespan


def create_app(
    settings: Settings | None = None,
    *,
    prometheus: RangeSource | None = None,
    clock: Clock = _now,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the application; nothing is read or started until its lifespan begins.

    ``transport`` carries the calls to the portal and to Prometheus' instant queries for
    the deployed state (tests pass a fake one; by default, the network).
    """
    settings = settings or Settings.from_env()
    app = FastAPI(
        title=settings.service_name,
        version=VERSION,
        lifespan=lifespan_of(settings, prometheus, clock, transport),
        **_fastapi_options(),
    )
    app.state.runtime = None
    app.state.remediations = None
    app.middleware("http")(observe)
    errors.install(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (pages, api, proposals, probes):
        app.include_router(module.router)
    return app


app = create_app()
