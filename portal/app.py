"""The FastAPI application factory."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from portal import __version__
from portal.auth.csrf import CSRFMiddleware
from portal.auth.identity import IdentityMiddleware
from portal.auth.routes import router as auth_router
from portal.catalog.api import router as catalog_api_router
from portal.catalog.routes import router as catalog_router
from portal.config import Settings
from portal.db import database_ok, make_engine, migrate
from portal.metrics import MetricsMiddleware, RequestMetrics
from portal.review.api import router as review_api_router
from portal.review.routes import router as review_router
from portal.scaffold.api import router as scaffold_api_router
from portal.scaffold.registration import router as registration_router
from portal.scaffold.revise import router as revise_router
from portal.scaffold.routes import router as scaffold_router
from portal.scaffold.runtime import ScaffoldRuntime
from portal.slo.api import router as slo_api_router
from portal.slo.routes import router as slo_router
from portal.slo.runtime import SLORuntime
from portal.ui.areas import router as areas_router
from portal.ui.render import STATIC_DIR, build_environment, error_page


def create_app(settings: Settings) -> FastAPI:
    """Build the portal for ``settings``; migrations run when the app starts."""
    engine = make_engine(settings)
    metrics = RequestMetrics()
    scaffold = ScaffoldRuntime(engine, settings)
    slo = SLORuntime(settings, engine, scaffold.context.gitops)
    # The error-budget review check reads the budgets the SLO pages read.
    scaffold.context.check_tools = dataclasses.replace(
        scaffold.context.check_tools, budget_remaining=slo.budget_remaining
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        migrate(engine)
        scaffold.start()
        yield
        scaffold.stop()
        engine.dispose()

    app = FastAPI(
        title="Platform portal",
        version=__version__,
        description="Internal developer portal: catalog, templates, reviews, SLOs, cost.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.scaffold = scaffold
    app.state.slo = slo
    app.state.jinja = build_environment()

    # Order matters: the last added runs first. Metrics see everything; the session is
    # decoded before CSRF checks its token and before the identity is resolved.
    app.add_middleware(IdentityMiddleware, settings=settings, engine=engine)
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.resolved_secret_key(),
        session_cookie=settings.session_cookie,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(auth_router)
    app.include_router(catalog_router)
    app.include_router(catalog_api_router)
    app.include_router(scaffold_api_router)
    app.include_router(review_api_router)
    app.include_router(scaffold_router)
    app.include_router(revise_router)
    app.include_router(registration_router)
    app.include_router(review_router)
    app.include_router(slo_router)
    app.include_router(slo_api_router)
    app.include_router(areas_router)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        """Report whether the database answers."""
        if database_ok(engine):
            return JSONResponse({"status": "ok", "database": "ok"})
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)

    @app.get("/metrics", tags=["operations"])
    def prometheus_metrics() -> Response:
        """Expose the portal's own metrics in Prometheus' text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get(
            "accept", ""
        ):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        heading = "Not found" if exc.status_code == 404 else f"Error {exc.status_code}"
        return error_page(request, heading, str(exc.detail), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    return app
