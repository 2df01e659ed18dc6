"""The seasonal baseline: per hour of week, robust to outliers, with its fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from app.seasonal import MIN_SLOT_POINTS, fit_seasonal, robust_center_scale

from .synthetic import level, series, timestamps


def test_it_learns_the_weekly_profile_despite_outliers() -> None:
    """Two weeks with 1% huge spikes: each slot's median is still the expected level."""
    item = series(14, seed=1)
    values = item.values.copy()
    values[::100] += 10_000.0
    baseline = fit_seasonal(item.timestamps, values)
    clean = fit_seasonal(item.timestamps, item.values)
    assert baseline.level_counts() == {"hour_of_week": 168, "hour_of_day": 0, "global": 0}
    assert np.max(np.abs(baseline.medians - clean.medians)) < 1.5
    # The slot's median is the level in the middle of its hour (the wave moves within it).
    middles = item.timestamps[: 168 * 12 : 12] + 1800
    assert np.max(np.abs(baseline.medians - level(middles))) < 3.5  # 24 noisy points a slot
    assert np.all((baseline.scales > 1.0) & (baseline.scales < 6.0))  # noise 3; spikes ignored


def test_a_point_scores_its_distance_in_robust_standard_deviations() -> None:
    """The median of the slot plus three scales scores 3."""
    item = series(14, seed=2)
    baseline = fit_seasonal(item.timestamps, item.values)
    medians, scales = baseline.expected(item.timestamps[:5])
    scores = baseline.scores(item.timestamps[:5], medians + 3 * scales)
    assert scores.tolist() == pytest.approx([3.0] * 5)


def test_short_windows_fall_back_to_the_hour_of_day_then_to_the_whole_series() -> None:
    """Two days fill two days' slots; the other days borrow the hour; two hours, the whole."""
    item = series(2)
    two_days = fit_seasonal(item.timestamps, item.values)
    assert two_days.level_counts() == {"hour_of_week": 48, "hour_of_day": 120, "global": 0}
    few = fit_seasonal(item.timestamps[: MIN_SLOT_POINTS - 1], item.values[: MIN_SLOT_POINTS - 1])
    assert few.level_counts() == {"hour_of_week": 0, "hour_of_day": 0, "global": 168}
    assert few.medians[0] == pytest.approx(np.median(item.values[: MIN_SLOT_POINTS - 1]))


def test_a_constant_series_has_a_scale_and_any_change_stands_out() -> None:
    """No division by zero; a step away from a flat line is far."""
    times = timestamps(3)
    baseline = fit_seasonal(times, np.full(times.size, 42.0))
    assert np.all(baseline.scales > 0)
    assert baseline.scores(times[:1], np.array([42.0]))[0] == 0.0
    assert baseline.scores(times[:1], np.array([43.0]))[0] > 1000


def test_robust_scale_uses_the_mean_deviation_when_most_values_are_equal() -> None:
    """A mostly idle counter (MAD 0) still gets a usable scale."""
    values = np.zeros(100)
    values[:10] = 5.0
    center, scale = robust_center_scale(values)
    assert center == 0.0 and scale == pytest.approx(1.2533 * 0.5)
