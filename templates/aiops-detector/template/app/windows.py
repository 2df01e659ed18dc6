"""Anomalous points merged into windows, and the severity of a score.

Scores are relative to the calibrated alarm threshold: a point is anomalous above 1, and
critical from ``CRITICAL_SCORE`` (twice as far from normal as the alarm line). Anomalous
points closer than the gap tolerance belong to one window, so a flapping metric is one
incident, not twenty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

CRITICAL_SCORE = 2.0
DETECTORS = ("isolation_forest", "seasonal", "both")


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
