"""Synthetic metrics with a daily and weekly rhythm, noise, and anomalies put in on purpose.

Every series is seeded, so each test sees the same numbers on every run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from app.series import Series

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 00:00 UTC
STEP = 300.0  # five minutes
POINTS_PER_DAY = int(86400 / STEP)


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """Add ``delta`` to ``length`` points from index ``start`` (or flatten them)."""

    start: int
    length: int = 1
    delta: float = 0.0
    flatten: bool = False


def level(timestamps: np.ndarray, base: float = 100.0) -> np.ndarray:
    """Return the expected value: a daily wave (peak at 14:00 UTC), quieter at weekends."""
    hours = np.mod(timestamps, 86400) / 3600
    days = np.floor_divide(timestamps, 86400).astype(int)
    weekend = np.isin(np.mod(days + 3, 7), (5, 6))
    daily = 30.0 * np.cos((hours - 14.0) / 24.0 * 2 * math.pi)
    return np.asarray(base + daily - np.where(weekend, 15.0, 0.0), dtype=np.float64)


def values_at(timestamps: np.ndarray, seed: int = 0, noise: float = 3.0) -> np.ndarray:
    """Return the expected value plus seeded Gaussian noise at each timestamp."""
    rng = np.random.default_rng(seed)
    return level(timestamps) + rng.normal(0.0, noise, timestamps.size)


def timestamps(days: float, start: datetime = START, step: float = STEP) -> np.ndarray:
    """Return ``days`` of timestamps every ``step`` seconds from ``start``."""
    count = int(days * 86400 / step)
    return start.timestamp() + step * np.arange(count, dtype=np.float64)


def series(
    days: float = 10,
    *,
    start: datetime = START,
    seed: int = 0,
    anomalies: Sequence[Anomaly] = (),
    labels: dict[str, str] | None = None,
) -> Series:
    """Return a synthetic series with the anomalies applied."""
    times = timestamps(days, start)
    values = values_at(times, seed)
    for anomaly in anomalies:
        part = slice(anomaly.start, anomaly.start + anomaly.length)
        if anomaly.flatten:
            values[part] = level(times[part])
        values[part] += anomaly.delta
    return Series(labels or {}, times, values)


def points(item: Series) -> list[dict[str, object]]:
    """Return a series as the API's inline points (RFC 3339 timestamps)."""
    return [
        {"timestamp": datetime.fromtimestamp(t, UTC).isoformat(), "value": float(v)}
        for t, v in zip(item.timestamps, item.values, strict=True)
    ]
