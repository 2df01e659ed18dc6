"""What the platform reads: liveness, readiness and the Prometheus exposition.

Ready means started: the remediation rules loaded (a file with a problem stops the start,
so a pod with bad rules is never ready and a rollout of them stops while the previous pods
serve) and the stored models loaded. Models are trained on demand (``POST /train``), so a
replica with none yet is ready, serves ``/train`` and answers ``/detect`` with a 404
naming what is untrained. A replica pinned to a model-registry version (``MODEL_VERSION``)
is ready once that version is fetched, verified and loaded; until then ``/readyz`` answers
503 with the reason (the load is retried in the background).
"""

from __future__ import annotations

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
    """Readiness: started (rules and stored models, or the pinned version, loaded)."""
    runtime = getattr(request.app.state, "runtime", None)
    if isinstance(runtime, Runtime):
        waiting = runtime.serving.waiting()
        if waiting is not None:  # pinned: never ready on a model other than its version
            return JSONResponse({"status": "loading model", "reason": waiting}, status_code=503)
        return JSONResponse({"status": "ready", "models": len(runtime.registry.all())})
    return JSONResponse({"status": "starting"}, status_code=503)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
