"""What the platform reads: liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .monitor import Monitor

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: the process serves HTTP."""
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: data and a model (the pinned version, when one is pinned) are loaded."""
    monitor = getattr(request.app.state, "monitor", None)
    if isinstance(monitor, Monitor) and monitor.ready and monitor.models is not None:
        return JSONResponse({"status": "ready", "model_version": monitor.models.version})
    missing = monitor.waiting_for() if isinstance(monitor, Monitor) else "not started"
    return JSONResponse({"status": "starting", "missing": missing}, status_code=503)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
