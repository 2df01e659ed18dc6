"""The JSON API: ``POST /train``, ``POST /detect``, the models' cards and the model served.

``GET /api/models`` lists the card of every model held, ``GET /api/model`` the model served.

With a model registry (``MLFLOW_TRACKING_URI``) every training is also logged as a new
version (:mod:`.versioning`); a replica pinned to a version keeps serving it.

Reading Prometheus and fitting models block, so both run in a worker thread; trainings
run one at a time per replica (they use a core each), detections side by side.

Once the service has started (its lifespan runs inside the app's, after the libraries, the
rules and the stored models are loaded), that heap is frozen out of the garbage
collector's sight (:func:`gc.freeze`). A ``/detect`` of 10,000 points allocates some 10,000
tracked objects that live through the request; without the freeze about one request in
five paid a full collection of the ~180,000 objects the libraries hold, some 100 ms.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from . import metrics
from .detector import NotEnoughDataError, detection_of
from .errors import ApiError
from .runtime import Runtime, RuntimeDep
from .schemas import DetectRequest, TrainRequest
from .serialize import source_detection_json, training_json
from .settings import VERSION
from .sources import detection_sets, training_sets
from .training import train_model


@asynccontextmanager
async def _frozen_heap(app: FastAPI) -> AsyncIterator[None]:
    """Keep what the started service holds out of every collection until it stops."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


router = APIRouter(lifespan=_frozen_heap)


def _train(runtime: Runtime, request: TrainRequest) -> dict[str, Any]:
    # Every source is read and checked before any is trained: a refusal trains nothing.
    sets = training_sets(request, runtime.prometheus)
    settings = runtime.settings
    rate = request.false_alarm_rate or settings.false_alarm_rate
    now = runtime.clock()
    trained = []
    for item in sets:
        try:
            model = train_model(
                item.source, item.series, item.window, rate, settings.service_name, now
            )
        except NotEnoughDataError as error:
            raise ApiError(item.field, str(error)) from error
        trained.append(model)
    pinned = runtime.serving.pinned
    # A pinned replica serves its registry version only: what it trains is a candidate.
    models = trained if pinned else [runtime.registry.add(model) for model in trained]
    for model in models:
        metrics.TRAININGS.labels(model.source.kind).inc()
    answer: dict[str, Any] = {
        "models": [training_json(item, model) for item, model in zip(sets, models, strict=True)]
    }
    registered = None
    if runtime.versioning is not None:
        registered = runtime.versioning.log_training(sets, models, rate, now)
        answer["registry"] = {
            "name": settings.registered_model,
            "version": None if registered is None else registered.version,
            "pinned": pinned,
        }
    runtime.serving.trained(models, registered)
    return answer


def _detect(runtime: Runtime, request: DetectRequest) -> list[dict[str, Any]]:
    results = []
    now = runtime.clock()
    for found in detection_sets(request, runtime.registry, runtime.prometheus):
        detector = found.model.detector
        known = [item for item in found.series if detector.profile(item) is not None]
        untrained = [item for item in found.series if detector.profile(item) is None]
        detections = []
        for item in known:
            scores = detector.scores(item)
            if found.source.kind == "series":  # the page has no other source for its points
                runtime.recent.put(found.source.name, item.labels, scores, now)
            detections.append(detection_of(scores, item.labels, detector.gap_seconds, found.since))
        results.append(source_detection_json(found, detections, untrained))
    return results


@router.post("/train")
async def train(request: TrainRequest, runtime: RuntimeDep) -> JSONResponse:
    """Train a model per query (read from Prometheus) or per inline series; answer their cards."""
    async with runtime.training:
        answer = await asyncio.to_thread(_train, runtime, request)
    return JSONResponse(answer)


@router.post("/detect")
async def detect(request: DetectRequest, runtime: RuntimeDep) -> JSONResponse:
    """Score each query's (or inline series') points with its model: anomalies and windows."""
    waiting = runtime.serving.waiting()
    if waiting is not None:
        raise ApiError("model", waiting, status=503)
    results = await asyncio.to_thread(_detect, runtime, request)
    return JSONResponse({"results": results})


@router.get("/api/models")
async def models(runtime: RuntimeDep) -> JSONResponse:
    """Return the card of every model this replica holds."""
    return JSONResponse({"models": [dict(model.card) for model in runtime.registry.all()]})


@router.get("/api/model")
async def served_model(runtime: RuntimeDep) -> JSONResponse:
    """Return the model served: name, version, its models' cards and ``registry``.

    ``registry`` is ``{name, version, pinned, source, sha256}``; ``source`` is ``mlflow`` for
    a registry version (pinned, or registered by the newest training), else ``local``.
    """
    waiting = runtime.serving.waiting()
    if waiting is not None:
        raise ApiError("model", waiting, status=503)
    current = runtime.serving.current
    if current is None:
        raise ApiError("model", "no model yet: POST /train first", status=404)
    return JSONResponse(
        {
            "name": current.name,
            "version": current.version,
            "models": [dict(model.card) for model in runtime.registry.all()],
            "registry": current.as_json(),
        }
    )


@router.get("/api")  # "/" is left to the page
async def index(runtime: RuntimeDep) -> JSONResponse:
    """Say which service answers, what it reads and how many models it holds."""
    settings = runtime.settings
    return JSONResponse(
        {
            "service": settings.service_name,
            "version": VERSION,
            "prometheus_url": settings.prometheus_url,
            "models": len(runtime.registry.all()),
            "endpoints": [
                "POST /train",
                "POST /detect",
                "GET /api/models",
                "GET /api/model",
                "GET /api/remediations",
                "GET /",
            ],
        }
    )
