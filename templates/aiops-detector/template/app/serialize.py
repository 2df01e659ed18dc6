"""The JSON shapes of the API: detections, windows, points and trained models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .detector import SeriesDetection
from .series import Series
from .sources import DetectionSet, TrainingSet
from .training import TrainedModel, iso
from .windows import AnomalyPoint, AnomalyWindow


def _score(value: float) -> float:
    return round(value, 4)


def point_json(point: AnomalyPoint) -> dict[str, Any]:
    """Describe one anomalous point."""
    return {
        "timestamp": iso(point.timestamp),
        "value": point.value,
        "score": _score(point.score),
        "detector": point.detector,
        "severity": point.severity,
    }


def window_json(window: AnomalyWindow) -> dict[str, Any]:
    """Describe one anomaly window."""
    return {
        "start": iso(window.start),
        "end": iso(window.end),
        "peak_score": _score(window.peak_score),
        "peak_at": iso(window.peak_at),
        "points": window.points,
        "detector": window.detector,
        "severity": window.severity,
    }


def detection_json(detection: SeriesDetection) -> dict[str, Any]:
    """Describe the anomalies of one series."""
    latest = detection.latest_score
    return {
        "labels": dict(detection.labels),
        "points_scored": detection.points,
        "latest_score": None if latest is None else _score(latest),
        "windows": [window_json(window) for window in detection.windows],
        "anomalies": [point_json(point) for point in detection.anomalies],
    }


def _labels(series: Sequence[Series]) -> list[Mapping[str, str]]:
    return [dict(item.labels) for item in series]


def source_detection_json(
    found: DetectionSet, detections: Sequence[SeriesDetection], untrained: Sequence[Series]
) -> dict[str, Any]:
    """Describe the detection of one source: every series scored, and those it never saw."""
    detector = found.model.detector
    return {
        "source": found.source.as_dict(),
        "field": found.field,
        "model_version": found.model.version,
        "step_seconds": detector.step,
        "threshold": round(detector.calibration.threshold, 4),
        "series": [detection_json(detection) for detection in detections],
        # New label sets (a new pod, say) have no baseline: retrain to include them.
        "untrained_series": _labels(untrained),
    }


def training_json(trained: TrainingSet, model: TrainedModel) -> dict[str, Any]:
    """Describe a newly trained model: its card and the series left out."""
    return {
        "source": model.source.as_dict(),
        "field": trained.field,
        "model_version": model.version,
        "card": dict(model.card),
        "skipped_series": [
            {"labels": dict(item.labels), "points": len(item)} for item in trained.skipped
        ],
    }
