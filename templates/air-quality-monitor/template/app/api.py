"""The JSON API: assessment, history, forecast, the manual check, the model card, training."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from . import metrics
from .check_form import parse_check
from .dependencies import MonitorDep, submitted, unavailable
from .monitor import NoDataError, TrainingBusyError
from .serialize import assessment_json, forecast_json, history_json, model_json, verdict_json
from .training import NotEnoughDataError

router = APIRouter()


def _authorised(request: Request, token: str) -> bool:
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@router.get("/api/assessment")
async def api_assessment(monitor: MonitorDep) -> JSONResponse:
    """Return the current verdict and each pollutant against the WHO guideline."""
    snapshot = await monitor.current()
    if snapshot is None:
        return unavailable(monitor)
    return JSONResponse(assessment_json(monitor, snapshot))


@router.get("/api/history")
async def api_history(monitor: MonitorDep, days: int = Query(9, ge=1, le=9)) -> JSONResponse:
    """Daily averages of the last ``days`` days (1 to 9, today so far included)."""
    snapshot = await monitor.current()
    if snapshot is None:
        return unavailable(monitor)
    return JSONResponse(history_json(monitor, snapshot, days))


@router.get("/api/forecast")
async def api_forecast(monitor: MonitorDep) -> JSONResponse:
    """Tomorrow's average per pollutant: the service's model and the CAMS forecast."""
    snapshot = await monitor.current()
    if snapshot is None:
        return unavailable(monitor)
    return JSONResponse(forecast_json(monitor, snapshot))


@router.post("/api/check")
async def api_check(request: Request, monitor: MonitorDep) -> JSONResponse:
    """Judge concentrations sent as JSON ``{"pm2_5": 12.5, ...}`` (µg/m³)."""
    await monitor.current()  # the check uses the model of the current data
    check = parse_check(await submitted(request), monitor.settings.pollutants)
    if not check.valid:
        metrics.MANUAL_CHECKS.labels("invalid").inc()
        return JSONResponse({"error": True, "errors": dict(check.errors)}, status_code=422)
    verdict = monitor.check(check.values)
    metrics.MANUAL_CHECKS.labels(verdict.level.value).inc()
    model = monitor.models.version if monitor.models else None
    return JSONResponse({"verdict": verdict_json(verdict), "model_version": model})


@router.get("/api/model")
async def api_model(monitor: MonitorDep) -> JSONResponse:
    """Return the card of the model in use and where it comes from (read by the portal)."""
    if monitor.models is None:
        reason = monitor.waiting_for() if monitor.pinned else "no model trained yet"
        return JSONResponse({"error": True, "reason": reason}, status_code=503)
    return JSONResponse(model_json(monitor, monitor.models))


@router.post("/train")
async def train(request: Request, monitor: MonitorDep) -> JSONResponse:
    """Retrain now on the latest data; answers the new model's card (a candidate if pinned)."""
    if not _authorised(request, monitor.settings.train_token):
        return JSONResponse({"error": True, "reason": "a valid token is required"}, 401)
    try:
        trained = await monitor.train()
    except TrainingBusyError as error:
        return JSONResponse({"error": True, "reason": str(error)}, status_code=409)
    except (NoDataError, NotEnoughDataError) as error:
        return JSONResponse({"error": True, "reason": str(error)}, status_code=503)
    return JSONResponse({**model_json(monitor, trained), "serving": trained is monitor.models})
