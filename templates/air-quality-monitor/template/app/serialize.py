"""The JSON shapes of the API (plain dicts, so the page and the API say the same)."""

from __future__ import annotations

from typing import Any

from .assessment import LABELS, UNIT, WHO_24H_LIMITS, AnomalyScore, Reading, Verdict
from .monitor import Monitor
from .snapshot import PollutantForecast, Snapshot
from .training import TrainedModels

ATTRIBUTION = {
    "text": "Air-quality data: Copernicus Atmosphere Monitoring Service (CAMS) via Open-Meteo.com",
    "license": "CC BY 4.0",
    "license_url": "https://creativecommons.org/licenses/by/4.0/",
    "source_url": "https://open-meteo.com/en/docs/air-quality-api",
}


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def anomaly_json(anomaly: AnomalyScore | None) -> dict[str, Any] | None:
    """Describe an anomaly score."""
    if anomaly is None:
        return None
    return {
        "score": round(anomaly.score, 4),
        "threshold": round(anomaly.threshold, 4),
        "anomalous": anomaly.anomalous,
        "beyond_training_range": list(anomaly.beyond_range),
        "features": list(anomaly.features),
    }


def reading_json(reading: Reading) -> dict[str, Any]:
    """Describe one pollutant's reading against the WHO guideline and the European AQI."""
    band = reading.band
    return {
        "pollutant": reading.pollutant,
        "label": reading.label,
        "available": reading.available,
        "concentration_24h": _round(reading.value),
        "latest_hourly": _round(reading.latest),
        "unit": UNIT,
        "who_guideline_24h": reading.limit,
        "who_ratio": _round(reading.ratio, 3),
        "above_who_guideline": reading.above_limit,
        "eaqi_band": None if band is None else {"label": band.label, "colour": band.colour},
        "note": reading.note or None,
    }


def verdict_json(verdict: Verdict | None) -> dict[str, Any] | None:
    """Describe a verdict."""
    if verdict is None:
        return None
    return {
        "level": verdict.level.value,
        "title": verdict.title,
        "reason": verdict.reason,
        "anomaly": anomaly_json(verdict.anomaly),
        "pollutants": [reading_json(reading) for reading in verdict.readings],
    }


def assessment_json(monitor: Monitor, snapshot: Snapshot) -> dict[str, Any]:
    """Return ``GET /api/assessment``."""
    settings = monitor.settings
    now = snapshot.timeline.now
    return {
        "service": settings.service_name,
        "city": settings.city,
        "latitude": settings.latitude,
        "longitude": settings.longitude,
        "timezone": snapshot.timeline.data.timezone or settings.timezone,
        "local_time": now.isoformat() if now else None,
        "fetched_at": snapshot.fetched_at.isoformat(),
        "data_age_seconds": round(monitor.age_seconds() or 0.0, 1),
        "fresh": monitor.is_fresh(),
        "last_error": monitor.last_error.reason if monitor.last_error else None,
        "verdict": verdict_json(snapshot.verdict),
        "pollutants": [reading_json(reading) for reading in snapshot.readings],
        "model_version": snapshot.model_version,
        "attribution": ATTRIBUTION,
    }


def history_json(monitor: Monitor, snapshot: Snapshot, days: int) -> dict[str, Any]:
    """Return ``GET /api/history``: daily averages of the last ``days`` days (today so far)."""
    timeline = snapshot.timeline
    pollutants = monitor.settings.pollutants
    chosen = timeline.history_days(days)
    rows = [
        {"date": day.isoformat(), **{p: _round(timeline.daily_mean(p, day)) for p in pollutants}}
        for day in chosen
    ]
    averages = {}
    for pollutant in pollutants:
        values = [row[pollutant] for row in rows if row[pollutant] is not None]
        averages[pollutant] = _round(sum(values) / len(values)) if values else None
    return {
        "city": monitor.settings.city,
        "unit": UNIT,
        "days": rows,
        "averages": averages,
        "who_guidelines_24h": {p: WHO_24H_LIMITS[p] for p in pollutants},
        "labels": {p: LABELS[p] for p in pollutants},
        "fetched_at": snapshot.fetched_at.isoformat(),
        "attribution": ATTRIBUTION,
    }


def forecast_item(forecast: PollutantForecast) -> dict[str, Any]:
    """Describe tomorrow's forecast of one pollutant: the model's and the CAMS one."""
    skill = forecast.skill.as_dict() if forecast.skill else None
    return {
        "pollutant": forecast.pollutant,
        "label": LABELS[forecast.pollutant],
        "who_guideline_24h": WHO_24H_LIMITS[forecast.pollutant],
        "model": {"value": _round(forecast.model), "method": forecast.method, "skill": skill},
        "cams": {"value": _round(forecast.cams), "source": "CAMS via Open-Meteo"},
    }


def forecast_json(monitor: Monitor, snapshot: Snapshot) -> dict[str, Any]:
    """Return ``GET /api/forecast``."""
    return {
        "city": monitor.settings.city,
        "date": snapshot.timeline.tomorrow.isoformat(),
        "unit": UNIT,
        "pollutants": [forecast_item(forecast) for forecast in snapshot.forecasts],
        "model_version": snapshot.model_version,
        "attribution": ATTRIBUTION,
    }


def registry_json(monitor: Monitor, models: TrainedModels) -> dict[str, Any]:
    """Describe where a model version comes from: the ``registry`` object of the card."""
    artifact = models.card.get("artifact", {})
    return {
        "name": monitor.settings.registered_model,
        "version": models.registered_version or models.version,
        "pinned": monitor.pinned and models is monitor.models,
        "source": "mlflow" if models.registered_version else "local",
        "sha256": artifact.get("sha256"),
    }


def model_json(monitor: Monitor, models: TrainedModels) -> dict[str, Any]:
    """Return a model's card with its ``registry`` object (``GET /api/model``, ``/train``)."""
    return {**models.card, "registry": registry_json(monitor, models)}
