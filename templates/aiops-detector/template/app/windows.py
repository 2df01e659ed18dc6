"""How strongly points count, anomalous points merged into windows, and a score's severity.

A detector's score becomes evidence before it meets its line: one odd sample is weaker than
two in a row (:func:`corroborated`: a lone point counts for ``1 / LONE_POINT_FACTOR`` of its
score), and some detectors need a run of points (:func:`sustained`). Both scale with the
scores, so a line is placed on the evidence as on the scores themselves.

Scores are relative to the calibrated alarm threshold: a point is anomalous above 1, and
critical from ``CRITICAL_SCORE`` (twice as far from normal as the alarm line). Anomalous
points closer than the gap tolerance belong to one window, so a flapping metric is one
incident, not twenty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

CRITICAL_SCORE = 2.0
DETECTORS = ("isolation_forest", "seasonal", "both")
LONE_POINT_FACTOR = 2.0  # a point whose predecessor is ordinary counts for half its score
FloatArray = NDArray[np.float64]


def _before(timestamps: FloatArray, scores: FloatArray, gap_seconds: float) -> FloatArray:
    """Return each point's predecessor's score (0 for the first, and after a longer gap)."""
    before = np.zeros_like(scores)
    if scores.size > 1:
        before[1:] = np.where(np.diff(timestamps) <= gap_seconds, scores[:-1], 0.0)
    return before


def corroborated(timestamps: FloatArray, scores: FloatArray, gap_seconds: float) -> FloatArray:
    """Return each point's score as evidence: a lone point counts for part of it.

    A point keeps its score as far as the point before it (at most ``gap_seconds`` earlier)
    is as strange, and keeps at least its score over ``LONE_POINT_FACTOR``: one odd sample
    must be twice as far out as two in a row to alarm.
    """
    before = _before(timestamps, scores, gap_seconds)
    lone = scores / LONE_POINT_FACTOR
    return np.asarray(np.maximum(np.minimum(scores, before), lone), dtype=np.float64)


def sustained(
    timestamps: FloatArray, scores: FloatArray, gap_seconds: float, points: int
) -> FloatArray:
    """Return the smallest score of each point and the ``points - 1`` points before it.

    A predecessor further than ``gap_seconds`` away, or missing at the start, counts as 0.
    """
    evidence, before = scores.copy(), scores
    for _ in range(points - 1):
        before = _before(timestamps, before, gap_seconds)
        evidence = np.minimum(evidence, before)
    return np.asarray(evidence, dtype=np.float64)


def severity_of(score: float) -> str:
    """Return ``critical`` from ``CRITICAL_SCORE`` on, else ``warning``."""
    return "critical" if score >= CRITICAL_SCORE else "warning"


def detector_name(isolation_forest: bool, seasonal: bool) -> str:
    """Name which detectors fired: ``isolation_forest``, ``seasonal`` or ``both``."""
    if isolation_forest and seasonal:
        return "both"
    if not (isolation_forest or seasonal):
        raise ValueError("no detector fired")
    return "isolation_forest" if isolation_forest else "seasonal"


@dataclasses.dataclass(frozen=True)
class AnomalyPoint:
    """One point above the alarm line, and which detectors put it there."""

    timestamp: float
    value: float
    score: float
    isolation_forest: bool
    seasonal: bool

    @property
    def detector(self) -> str:
        """Return the name of the detectors that fired."""
        return detector_name(self.isolation_forest, self.seasonal)

    @property
    def severity(self) -> str:
        """Return the severity of the point's score."""
        return severity_of(self.score)


@dataclasses.dataclass(frozen=True)
class AnomalyWindow:
    """Anomalous points no further apart than the gap tolerance."""

    start: float
    end: float
    peak_score: float
    peak_at: float
    points: int
    isolation_forest: bool
    seasonal: bool

    @property
    def detector(self) -> str:
        """Return which detectors fired inside the window."""
        return detector_name(self.isolation_forest, self.seasonal)

    @property
    def severity(self) -> str:
        """Return the severity of the window's peak."""
        return severity_of(self.peak_score)


def merge_windows(points: Sequence[AnomalyPoint], gap_seconds: float) -> list[AnomalyWindow]:
    """Merge anomalous points into windows; points at most ``gap_seconds`` apart join one."""
    windows: list[AnomalyWindow] = []
    for point in sorted(points, key=lambda item: item.timestamp):
        last = windows[-1] if windows else None
        if last is not None and point.timestamp - last.end <= gap_seconds:
            peak = point.score > last.peak_score
            windows[-1] = dataclasses.replace(
                last,
                end=point.timestamp,
                peak_score=point.score if peak else last.peak_score,
                peak_at=point.timestamp if peak else last.peak_at,
                points=last.points + 1,
                isolation_forest=last.isolation_forest or point.isolation_forest,
                seasonal=last.seasonal or point.seasonal,
            )
            continue
        windows.append(
            AnomalyWindow(
                start=point.timestamp,
                end=point.timestamp,
                peak_score=point.score,
                peak_at=point.timestamp,
                points=1,
                isolation_forest=point.isolation_forest,
                seasonal=point.seasonal,
            )
        )
    return windows
