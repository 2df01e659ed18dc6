"""A trained model: what it was trained for (a query or an inline series), and its card."""

from __future__ import annotations

import dataclasses
import hashlib
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import sklearn
import skops

from . import detector as ensemble
from . import seasonal
from .detector import Detector, train_detector
from .features import WINDOWS
from .series import Series
from .settings import VERSION
from .windows import CRITICAL_SCORE, LONE_POINT_FACTOR


@dataclasses.dataclass(frozen=True)
class Source:
    """What a model is for: a PromQL query, or the name of an inline series."""

    kind: Literal["query", "series"]
    name: str

    @property
    def ident(self) -> str:
        """Return a file-safe identifier (the query text may hold any character)."""
        digest = hashlib.sha256(f"{self.kind}\0{self.name}".encode()).hexdigest()
        return f"{self.kind}-{digest[:20]}"

    def as_dict(self) -> dict[str, str]:
        """Describe the source as the API names it."""
        return {"kind": self.kind, "query" if self.kind == "query" else "name": self.name}


@dataclasses.dataclass(frozen=True)
class Window:
    """The training window asked for: Unix seconds, and the step (None for inline series)."""

    start: float
    end: float
    step: float | None


@dataclasses.dataclass(frozen=True, eq=False)
class TrainedModel:
    """One version of the model of one source."""

    source: Source
    detector: Detector
    version: str
    trained_at: datetime
    card: Mapping[str, Any]


def iso(seconds: float) -> str:
    """Return Unix seconds as an RFC 3339 UTC time (``2026-01-05T10:00:00Z``)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def train_model(
    source: Source,
    series: Sequence[Series],
    window: Window,
    false_alarm_rate: float,
    service_name: str,
    now: datetime,
) -> TrainedModel:
    """Train the ensemble on the series of one source; the card describes it."""
    detector = train_detector(series, false_alarm_rate, window.step)
    version = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    model = TrainedModel(source, detector, version, now, {})
    return dataclasses.replace(model, card=describe(model, window, service_name))


def describe(model: TrainedModel, window: Window, service_name: str) -> dict[str, Any]:
    """Return the model card (the store adds the artifact's file name and sha256)."""
    detector, calibration = model.detector, model.detector.calibration
    profiles = list(detector.profiles.values())
    return {
        "name": f"{service_name}/{model.source.ident}",
        "version": model.version,
        "created_at": model.trained_at.astimezone(UTC).isoformat(),
        "service": service_name,
        "service_version": VERSION,
        "source": model.source.as_dict(),
        "query": model.source.name if model.source.kind == "query" else None,
        "training_window": {
            "start": iso(window.start),
            "end": iso(window.end),
            "step_seconds": detector.step,
            "points": sum(profile.points for profile in profiles),
            "series": len(profiles),
        },
        "threshold": {
            "value": round(calibration.threshold, 6),
            "unit": (
                "robust standard deviations of the seasonal baseline's evidence; the forest's "
                "scale is stored so that its own line (each for half the rate) falls on it"
            ),
            "false_alarm_rate": calibration.false_alarm_rate,
            "training_alarm_rate": round(calibration.training_alarm_rate, 6),
            "training_points": calibration.training_points,
        },
        "parameters": {
            "algorithm": "sklearn.ensemble.IsolationForest + seasonal median/MAD per hour of week",
            "features": list(detector.features),
            "windows_steps": list(WINDOWS),
            "n_estimators": ensemble.N_ESTIMATORS,
            "random_state": ensemble.RANDOM_STATE,
            "min_training_points": ensemble.MIN_TRAINING_POINTS,
            "min_threshold": ensemble.MIN_THRESHOLD,
            "min_slot_points": seasonal.MIN_SLOT_POINTS,
            "min_cycles": seasonal.MIN_CYCLES,
            "recent_steps": seasonal.RECENT_STEPS,
            "max_drift": seasonal.MAX_DRIFT,
            "lone_point_factor": LONE_POINT_FACTOR,
            "forest_sustain_points": ensemble.FOREST_SUSTAIN_POINTS,
            "context_steps": ensemble.CONTEXT_STEPS,
            "critical_score": CRITICAL_SCORE,
            "gap_tolerance_steps": ensemble.GAP_TOLERANCE_STEPS,
            "forest_center": calibration.forest_center,
            "forest_scale": calibration.forest_scale,
        },
        "series": [
            {
                "labels": dict(profile.labels),
                "points": profile.points,
                "start": iso(profile.start),
                "end": iso(profile.end),
                "median": profile.center,
                "robust_scale": profile.scale,
                "seasonal_slots": profile.seasonal.level_counts(),
            }
            for profile in profiles
        ],
        "libraries": {
            "scikit-learn": sklearn.__version__,
            "skops": skops.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
