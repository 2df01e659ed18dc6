"""Per-point features: time of day and week, changes per step, time-based rolling windows."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from app.features import (
    FEATURES,
    WINDOWS,
    changes,
    day_of_week,
    feature_matrix,
    hour_of_day,
    hour_of_week,
    rolling_mean_std,
    typical_step,
)


def _at(*moments: datetime) -> np.ndarray:
    return np.array([moment.timestamp() for moment in moments])


def test_time_of_day_and_week_are_utc_with_monday_first() -> None:
    """Monday 00:30 is slot 0, Sunday 23:59 slot 167; hours are fractional."""
    times = _at(
        datetime(2026, 3, 2, 0, 30, tzinfo=UTC),  # Monday
        datetime(2026, 3, 4, 14, 45, tzinfo=UTC),  # Wednesday
        datetime(2026, 3, 8, 23, 59, tzinfo=UTC),  # Sunday
    )
    assert day_of_week(times).tolist() == [0, 2, 6]
    assert hour_of_day(times).tolist() == pytest.approx([0.5, 14.75, 23 + 59 / 60])
    assert hour_of_week(times).tolist() == [0, 2 * 24 + 14, 167]


def test_the_typical_step_ignores_gaps() -> None:
    """The median spacing: a few missing points do not change it."""
    times = np.array([0.0, 60, 120, 180, 600, 660, 720])
    assert typical_step(times) == 60.0
    assert typical_step(np.array([5.0])) == 60.0  # nothing to measure: the default


def test_a_change_across_a_gap_is_spread_over_the_missing_steps() -> None:
    """From 1 to 4 over three steps is a change of 1 per step, not 3."""
    times = np.array([0.0, 60, 240])
    assert changes(times, np.array([0.0, 1.0, 4.0]), 60.0).tolist() == [0.0, 1.0, 1.0]


def test_rolling_windows_are_measured_in_time() -> None:
    """Each window holds the points of the last ``span`` seconds, whatever the gaps."""
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.choice([60.0, 60.0, 60.0, 300.0], 300))
    values = rng.normal(0, 1, 300)
    mean, std = rolling_mean_std(times, values, 330.0)
    for i in (0, 1, 57, 180, 299):
        inside = values[(times > times[i] - 330.0) & (times <= times[i])]
        assert mean[i] == pytest.approx(inside.mean())
        assert std[i] == pytest.approx(inside.std(), abs=1e-9)


def test_the_feature_matrix_has_a_row_per_point_and_a_column_per_feature() -> None:
    """Windows of 6 steps average the point and the 5 before it."""
    times = 60.0 * np.arange(200, dtype=np.float64)
    values = np.arange(200, dtype=float)
    matrix = feature_matrix(times, values, 60.0)
    assert matrix.shape == (200, len(FEATURES)) and WINDOWS[0] == 6
    row = dict(zip(FEATURES, matrix[100], strict=True))
    assert row["value"] == 100 and row["change"] == 1
    assert row["mean_6"] == pytest.approx(97.5) and row["mean_24"] == pytest.approx(88.5)
    assert row["hour_of_day"] == pytest.approx(100 / 60) and row["day_of_week"] == 3.0
    assert feature_matrix(times[:0], values[:0], 60.0).shape == (0, len(FEATURES))
