"""The FastAPI application factory."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from itertools import chain
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute

from portal import __version__
from portal.api_errors import Problem, error_responses, validation_error_response
from portal.auth.csrf import CSRFMiddleware
from portal.auth.identity import IdentityMiddleware
from portal.auth.routes import router as auth_router
from portal.auth.token_api import router as token_api_router
from portal.auth.token_routes import router as token_pages_router
from portal.catalog.api import router as catalog_api_router
from portal.catalog.routes import router as catalog_router
from portal.catalog.sync_state import runtime_from_settings as sync_runtime_from_settings
from portal.changes.models import UPDATE_KIND
from portal.changes.runtime import ChangesRuntime
from portal.config import Settings
from portal.cost.routes import api_router as cost_api_router
from portal.cost.routes import router as cost_router
from portal.cost.runtime import runtime_from_settings
from portal.cost.service_routes import api_router as cost_service_api_router
from portal.cost.service_routes import router as cost_service_router
from portal.db import database_ok, make_engine, migrate
from portal.fleet.api import router as fleet_api_router
from portal.fleet.routes import router as fleet_router
from portal.fleet.routes import service_router as fleet_service_router
from portal.fleet.runtime import FleetRuntime
from portal.fleet.update_api import router as fleet_update_api_router
from portal.fleet.update_routes import resolve_link
from portal.fleet.update_routes import router as fleet_update_router
from portal.home.routes import router as home_router
from portal.http_limits import BodyLimitMiddleware
from portal.integrations.mlflow import MlflowRegistry, mlflow_registry
from portal.metrics import MetricsMiddleware, RequestMetrics
from portal.models.prompts import ModelsRuntime
from portal.models.registry_runtime import RegistryRuntime
from portal.models.routes import api_router as models_api_router
from portal.models.routes import router as models_router
from portal.proposals.api import router as proposals_api_router
from portal.proposals.promote_model_routes import api_router as promote_api_router
from portal.proposals.promote_model_routes import router as promote_router
from portal.proposals.rightsizing import router as rightsizing_router
from portal.review.api import router as review_api_router
from portal.review.routes import router as review_router
from portal.review.vendored import TemplateFiles, TemplateRepository
from portal.scaffold.api import router as scaffold_api_router
from portal.scaffold.registry.git_routes import router as template_git_router
from portal.scaffold.registry.routes import router as template_registry_router
from portal.scaffold.request import SCAFFOLD_KIND
from portal.scaffold.revise import revise_link
from portal.scaffold.revise import router as revise_router
from portal.scaffold.routes import router as scaffold_router
from portal.scaffold.runtime import ScaffoldRuntime
from portal.slo.api import router as slo_api_router
from portal.slo.routes import router as slo_router
from portal.slo.runtime import SLORuntime
from portal.traces.api import router as traces_api_router
from portal.traces.ingest_pool import TraceIngest
from portal.traces.ingest_routes import RECEIVER_PATH
from portal.traces.ingest_routes import router as traces_ingest_router
from portal.traces.retention import TraceRetention
from portal.traces.routes import router as traces_router
from portal.traces.runtime import runtime_from_settings as traces_runtime_from_settings
from portal.ui.docs import add_api_docs
from portal.ui.render import STATIC_DIR, build_environment, error_page


class Health(BaseModel):
    """Whether the portal and its database answer."""

    status: Literal["ok", "error"]
    database: Literal["ok", "unreachable"]


def allowed_methods(path: str, routes: Iterable[BaseRoute]) -> str:
    """Return the ``Allow`` value for ``path``: the methods of every route there.

    Starlette names only the first route whose path matched (GET and POST of one path are
    two routes), which would tell a client that POST is not allowed where it is.
    """
    methods: set[str] = set()
    for route in routes:
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(path):
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def template_repositories(scaffold: ScaffoldRuntime) -> TemplateRepository:
    """Tell the review pages where a template renders from (they never import scaffolding)."""

    def find(name: str) -> Path | None:
        offered = scaffold.context.registry.get(name)
        return Path(offered.src) if offered is not None else None

    return find


def create_app(settings: Settings) -> FastAPI:
    """Build the portal for ``settings``; migrations run when the app starts."""
    engine = make_engine(settings)
    metrics = RequestMetrics()
    # One GitOps clone per app: the workers render into it, the pages read and decide on it.
    changes = ChangesRuntime(settings)
    scaffold = ScaffoldRuntime(engine, settings, changes.gitops)
    changes.offer_revision(SCAFFOLD_KIND, revise_link)
    changes.offer_revision(UPDATE_KIND, lambda change: resolve_link(change.id))
    # The SLO pages read the GitOps repository in request threads: bounded like every request.
    slo = SLORuntime(settings, engine, changes.request_gitops)
    cost = runtime_from_settings(settings, changes.request_gitops, engine)
    trace_retention = TraceRetention(engine, settings.trace_retention)
    trace_ingest = TraceIngest(settings, engine)
    registry = mlflow_registry(settings)  # None without PORTAL_MLFLOW_URL (and local MLflow)
    # Flux sync state on entity and change pages; says "not configured" without Kubernetes.
    sync_state = sync_runtime_from_settings(settings, changes.request_gitops)
    # The error-budget review check reads the budgets the SLO pages read.
    scaffold.context.check_tools = dataclasses.replace(
        scaffold.context.check_tools, budget_remaining=slo.budget_remaining
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        migrate(engine)
        scaffold.start()
        trace_retention.start()
        yield
        trace_retention.stop()
        trace_ingest.close()
        cost.stop()
        sync_state.close()
        scaffold.stop()
        if isinstance(registry, MlflowRegistry):
            registry.close()
        engine.dispose()

    app = FastAPI(
        title="Platform portal",
        version=__version__,
        description="Internal developer portal: catalog, templates, reviews, SLOs, cost.",
        lifespan=lifespan,
        # Any request can be malformed; in trusted-header mode a repeated identity header is.
        responses=error_responses(400),
        docs_url=None,  # FastAPI's pages load their assets from a CDN: add_api_docs below
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.changes = changes
    app.state.scaffold = scaffold
    app.state.fleet = FleetRuntime(scaffold)
    app.state.slo = slo
    app.state.cost = cost
    app.state.sync_state = sync_state
    app.state.models = ModelsRuntime(changes.request_gitops, registry=registry)
    app.state.model_registry = RegistryRuntime(
        registry, engine, changes.request_gitops, settings.environments
    )
    # The Traces pages read Tempo when PORTAL_TEMPO_URL is set, else the embedded store.
    app.state.traces = traces_runtime_from_settings(settings, engine)
    app.state.trace_ingest = trace_ingest
    app.state.jinja = build_environment()
    # The change page collapses the files a change copies verbatim from its template.
    app.state.template_files = TemplateFiles(template_repositories(scaffold))

    # Order matters: the last added runs first. Metrics see everything; bodies are bounded
    # before anything reads them; the session is decoded before CSRF checks its token and
    # before the identity is resolved.
    app.add_middleware(IdentityMiddleware, settings=settings, engine=engine)
    app.add_middleware(CSRFMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.resolved_secret_key(),
        session_cookie=settings.session_cookie,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        own_limits=frozenset({RECEIVER_PATH}),
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    routers = [
        home_router,
        auth_router,
        catalog_router,
        catalog_api_router,
        scaffold_api_router,
        fleet_api_router,
        fleet_update_api_router,
        proposals_api_router,
        token_api_router,
        token_pages_router,
        review_api_router,
        fleet_router,
        fleet_service_router,
        fleet_update_router,
        scaffold_router,
        revise_router,
        template_registry_router,
        template_git_router,
        review_router,
        slo_router,
        slo_api_router,
        cost_router,
        cost_api_router,
        cost_service_router,
        cost_service_api_router,
        rightsizing_router,
        models_router,
        models_api_router,
        promote_router,
        promote_api_router,
        traces_router,
        traces_api_router,
        traces_ingest_router,
    ]
    for router in routers:
        app.include_router(router)
    add_api_docs(app)

    @app.get(
        "/healthz",
        tags=["operations"],
        response_model=Health,
        responses={503: {"model": Health, "description": "The database does not answer"}},
    )
    def healthz() -> JSONResponse:
        """Report whether the database answers."""
        if database_ok(engine):
            return JSONResponse({"status": "ok", "database": "ok"})
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    def prometheus_metrics() -> Response:
        """Expose the portal's own metrics in Prometheus' text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})  # e.g. WWW-Authenticate on a 401
        if exc.status_code == 405:
            routes = chain(app.router.routes, *(router.routes for router in routers))
            headers["Allow"] = allowed_methods(request.scope["path"], routes)
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get(
            "accept", ""
        ):
            body = Problem(detail=str(exc.detail))
            return JSONResponse(body.model_dump(), exc.status_code, headers=headers)
        heading = "Not found" if exc.status_code == 404 else f"Error {exc.status_code}"
        response = error_page(request, heading, str(exc.detail), exc.status_code)
        response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return validation_error_response(exc)

    return app
