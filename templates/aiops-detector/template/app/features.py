"""Per-point features of one series, for the IsolationForest.

For each point: its value, its change from the previous point (per step, so a change across
a gap of missing points counts as the slower change it is), the mean and standard deviation
of the trailing windows of ``WINDOWS`` steps, and the hour of day and day of week (UTC).
Windows are measured in time, not in points: a gap shortens a window instead of stretching
it over older data, and no point ever needs a value that is missing.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .series import FloatArray

WINDOWS = (6, 24, 96)  # in steps: short, medium and long context
FEATURES = (
    "value",
    "change",
    *(f"{stat}_{window}" for window in WINDOWS for stat in ("mean", "std")),
    "hour_of_day",
    "day_of_week",
)
DEFAULT_STEP_SECONDS = 60.0
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
EPOCH_WEEKDAY = 3  # 1 January 1970 was a Thursday (Monday = 0, as in datetime.weekday)


def typical_step(timestamps: FloatArray) -> float:
    """Return the median spacing of the points (``DEFAULT_STEP_SECONDS`` with fewer than two)."""
    spacing = np.diff(timestamps)
    spacing = spacing[spacing > 0]
    return float(np.median(spacing)) if spacing.size else DEFAULT_STEP_SECONDS


def hour_of_day(timestamps: FloatArray) -> FloatArray:
    """Return the UTC hour of each timestamp as a number in [0, 24)."""
    return np.asarray(np.mod(timestamps, SECONDS_PER_DAY) / SECONDS_PER_HOUR, dtype=np.float64)


def day_of_week(timestamps: FloatArray) -> NDArray[np.int64]:
    """Return the UTC day of the week of each timestamp (Monday = 0)."""
    days = np.floor_divide(timestamps, SECONDS_PER_DAY).astype(np.int64)
    return np.asarray(np.mod(days + EPOCH_WEEKDAY, 7), dtype=np.int64)


def hour_of_week(timestamps: FloatArray) -> NDArray[np.int64]:
    """Return the UTC hour of the week of each timestamp (Monday 00:00-01:00 = 0, up to 167)."""
    hours = np.floor(hour_of_day(timestamps)).astype(np.int64)
    return day_of_week(timestamps) * 24 + np.minimum(hours, 23)


def changes(timestamps: FloatArray, values: FloatArray, step: float) -> FloatArray:
    """Return each point's change from the previous one, per step (0 for the first point)."""
    result = np.zeros_like(values)
    if values.size > 1:
        elapsed = np.maximum(np.diff(timestamps) / step, 1.0)
        result[1:] = np.diff(values) / elapsed
    return result


def rolling_mean_std(
    timestamps: FloatArray, values: FloatArray, span_seconds: float
) -> tuple[FloatArray, FloatArray]:
    """Return the mean and standard deviation of the points in ``(t - span, t]`` for each t.

    Cumulative sums make it linear in the number of points; values should be of order one
    (the detector passes them normalized) so the sums keep their precision.
    """
    first = np.searchsorted(timestamps, timestamps - span_seconds, side="right")
    last = np.arange(1, values.size + 1)
    sums = np.concatenate(([0.0], np.cumsum(values)))
    squares = np.concatenate(([0.0], np.cumsum(values * values)))
    count = (last - first).astype(np.float64)
    mean = (sums[last] - sums[first]) / count
    variance = (squares[last] - squares[first]) / count - mean * mean
    return mean, np.sqrt(np.maximum(variance, 0.0))


def feature_matrix(timestamps: FloatArray, values: FloatArray, step: float) -> FloatArray:
    """Return one row of ``FEATURES`` per point of a (normalized) series."""
    columns: list[FloatArray] = [values, changes(timestamps, values, step)]
    for window in WINDOWS:
        # Half a step of slack: a point exactly `window` steps back is not in the window.
        mean, std = rolling_mean_std(timestamps, values, (window - 0.5) * step)
        columns += [mean, std]
    columns += [hour_of_day(timestamps), day_of_week(timestamps).astype(np.float64)]
    return np.column_stack(columns) if values.size else np.empty((0, len(FEATURES)))
