"""What the platform reads: liveness, readiness and the Prometheus exposition.

Ready means able to answer from the documents: rag.yaml and the prompts read (a problem
stops the start, so a bad change never becomes ready and its rollout stops while the
previous pods serve), the index open and the documents folder ingested.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .runtime import Runtime

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: the process serves HTTP."""
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 once the documents are ingested; 503 while starting or if that failed."""
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        return JSONResponse({"status": "starting"}, status_code=503)
    if runtime.failure is not None:
        return JSONResponse({"status": "failed", "reason": runtime.failure}, status_code=503)
    if not runtime.ready.is_set():
        return JSONResponse({"status": "ingesting"}, status_code=503)
    chunks = await asyncio.to_thread(runtime.store.count)
    return JSONResponse(
        {"status": "ready", "chunks": chunks, "embedding": runtime.embedder.description}
    )


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
