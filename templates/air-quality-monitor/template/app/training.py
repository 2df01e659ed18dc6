"""Training both models on the latest history, and the card that describes them."""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sklearn
import skops

from .anomaly import AnomalyModel, train_anomaly_model, training_matrix
from .forecast import (
    FEATURES,
    MIN_SAMPLES,
    MIN_TARGET_DAYS,
    RIDGE_ALPHA,
    Forecaster,
    train_forecasters,
)
from .settings import VERSION, Settings
from .timeline import Timeline

DATA_SOURCE = (
    "Open-Meteo Air Quality API (CAMS European and global atmospheric composition "
    "forecasts), CC BY 4.0"
)


class NotEnoughDataError(RuntimeError):
    """The history is too short or empty to train on."""


@dataclasses.dataclass(frozen=True)
class TrainedModels:
    """One model version: the anomaly model, the forecasters and their card."""

    version: str
    trained_at: datetime
    anomaly: AnomalyModel | None
    forecasters: Mapping[str, Forecaster]
    card: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Its version in the model registry, once logged there (None: known only here).
    registered_version: str | None = None


def train_models(timeline: Timeline, settings: Settings, now: datetime) -> TrainedModels:
    """Train on the timeline's history; :class:`NotEnoughDataError` when nothing can be learnt."""
    anomaly = train_anomaly_model(timeline, settings.pollutants, settings.anomaly_contamination)
    forecasters = train_forecasters(timeline, settings.pollutants)
    if anomaly is None:
        raise NotEnoughDataError(
            "not enough history to train the anomaly model (no pollutant has a day of values)"
        )
    version = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    models = TrainedModels(version, now, anomaly, forecasters)
    return dataclasses.replace(models, card=describe(models, timeline, settings))


def describe(models: TrainedModels, timeline: Timeline, settings: Settings) -> dict[str, Any]:
    """Return the model card (without the artifact's file name and digest)."""
    anomaly = models.anomaly
    features, matrix = training_matrix(timeline, settings.pollutants)
    times = timeline.data.times[: timeline.now_index + 1]
    metrics: dict[str, Any] = {"forecast": {}}
    if anomaly is not None and len(matrix):
        scores = -anomaly.forest.score_samples(np.log1p(matrix))
        threshold = float(-anomaly.forest.offset_)
        metrics["anomaly"] = {
            "training_hours": len(matrix),
            "training_anomaly_rate": round(float(np.mean(scores > threshold)), 4),
            "threshold": round(threshold, 4),
            "mean_score": round(float(np.mean(scores)), 4),
        }
    for name, forecaster in models.forecasters.items():
        metrics["forecast"][name] = {
            "method": forecaster.method,
            "samples": forecaster.samples,
            **forecaster.skill.as_dict(),
        }
    return {
        "name": settings.registered_model,
        "version": models.version,
        "created_at": models.trained_at.astimezone(UTC).isoformat(),
        "service_version": VERSION,
        "city": settings.city,
        "latitude": settings.latitude,
        "longitude": settings.longitude,
        "data_source": DATA_SOURCE,
        "sklearn_version": sklearn.__version__,
        "libraries": {
            "scikit-learn": sklearn.__version__,
            "skops": skops.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "training_window": {
            "start": times[0].isoformat() if times else None,
            "end": times[-1].isoformat() if times else None,
            "hours": len(times),
            "timezone": timeline.data.timezone,
            "utc_offset_seconds": timeline.data.utc_offset_seconds,
        },
        "parameters": {
            "anomaly": anomaly.parameters() if anomaly is not None else None,
            "forecast": {
                "algorithm": "sklearn.linear_model.Ridge, else persistence",
                "alpha": RIDGE_ALPHA,
                "features": list(FEATURES),
                "target": "next calendar day's average (local time)",
                "min_target_days": MIN_TARGET_DAYS,
                "min_samples": MIN_SAMPLES,
                "pollutants": list(models.forecasters),
            },
        },
        "metrics": metrics,
        "features": list(features),
    }
