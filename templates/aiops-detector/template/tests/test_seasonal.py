"""The seasonal baseline: per hour of week, robust to outliers, with its fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from app.seasonal import (
    MAX_DRIFT,
    MIN_RECENT_SHARE,
    MIN_SCALE_SHARE,
    MIN_SLOT_POINTS,
    RECENT_STEPS,
    REFRESH_STEPS,
    fit_seasonal,
    recent_drift,
    robust_center_scale,
)

from .synthetic import STEP, level, series, timestamps


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
    """A slot of the week needs two weeks, an hour of the day two days; less: the whole."""
    item = series(2)
    two_days = fit_seasonal(item.timestamps, item.values)
    assert two_days.level_counts() == {"hour_of_week": 0, "hour_of_day": 168, "global": 0}
    one_week = series(7)
    assert fit_seasonal(one_week.timestamps, one_week.values).level_counts()["hour_of_week"] == 0
    day = series(1)
    assert fit_seasonal(day.timestamps, day.values).level_counts()["global"] == 168
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


def test_a_flat_metric_keeps_one_median_when_hours_do_not_predict_a_held_out_day() -> None:
    """Noise without a daily rhythm: 24 hourly medians would only learn the noise."""
    times = timestamps(4)
    flat = np.random.default_rng(5).normal(50.0, 3.0, times.size)
    baseline = fit_seasonal(times, flat)
    assert baseline.level_counts() == {"hour_of_week": 0, "hour_of_day": 0, "global": 168}
    assert baseline.medians[0] == pytest.approx(np.median(flat))


def test_a_slot_of_repeated_readings_keeps_a_scale_of_the_series() -> None:
    """An hour whose readings all repeat (MAD 0) gets a share of the series' typical scale."""
    item = series(14, seed=3)
    values = item.values.copy()
    hours = np.floor(np.mod(item.timestamps, 86400) / 3600)
    values[hours == 4] = np.round(level(item.timestamps[hours == 4]))  # quantized
    values[hours == 4] = 80.0
    baseline = fit_seasonal(item.timestamps, values)
    _, typical = robust_center_scale(values - baseline.expected(item.timestamps)[0])
    assert np.min(baseline.scales) >= MIN_SCALE_SHARE * typical - 1e-9
    assert baseline.scales[4] == pytest.approx(MIN_SCALE_SHARE * typical)


def _drifting(shift: float, days: float = 3.0) -> tuple[np.ndarray, np.ndarray, float]:
    """Two weeks of training, then ``days`` shifted by ``shift`` from the start of day 15."""
    item = series(14 + days, seed=8)
    values = item.values.copy()
    start = item.timestamps[0] + 14 * 86400
    values[item.timestamps >= start] += shift
    return item.timestamps, values, start


def test_a_small_lasting_shift_becomes_normal_once_it_holds_half_the_recent_past() -> None:
    """+2 scales: strange when it starts, normal half a day (and an hour's refresh) later."""
    times, values, start = _drifting(6.0)  # the noise is 3
    training = times < times[0] + 14 * 86400
    baseline = fit_seasonal(times[training], values[training])
    residuals = baseline.residuals(times, values, STEP)
    settled = start + (MIN_RECENT_SHARE * RECENT_STEPS + REFRESH_STEPS) * STEP
    first_hour = (times >= start) & (times < start + 3600)
    assert np.median(residuals[first_hour]) > 1.5  # judged against the trained level
    assert abs(np.median(residuals[times >= settled])) < 0.5  # the recent level followed
    # Only past points move the level: nothing before the shift saw it coming.
    before = (times >= start - 3600) & (times < start)
    assert abs(np.median(residuals[before])) < 0.5


def test_a_large_shift_stays_anomalous_until_the_model_is_retrained() -> None:
    """Ten scales up: the recent level moves the expectation at most MAX_DRIFT scales."""
    times, values, start = _drifting(30.0)
    training = times < times[0] + 14 * 86400
    baseline = fit_seasonal(times[training], values[training])
    residuals = baseline.residuals(times, values, STEP)
    late = times >= start + 2 * 86400
    _, scales = baseline.expected(times[late])
    expected_floor = (30.0 - MAX_DRIFT * np.median(scales)) / np.median(scales)
    spread = np.median(residuals[late])
    assert spread > 3.0 and spread > 0.5 * expected_floor


def test_the_recent_level_needs_half_its_window_and_ignores_its_own_block() -> None:
    """Too little history: the trained baseline as it is; then the median of the past only."""
    times = STEP * np.arange(600, dtype=np.float64)
    residuals = np.where(np.arange(600) % 2, 1.0, 0.0)  # a median of 0.5 over any even count
    residuals[156:168] = 5.0  # one block: its own points must not move its level
    level_, spread = recent_drift(times, residuals, np.ones_like(times), STEP)
    short = times < MIN_RECENT_SHARE * RECENT_STEPS * STEP
    assert np.all(level_[short] == 0.0) and np.all(spread[short] == 1.0)
    assert REFRESH_STEPS == 12 and np.all(level_[156:168] == 0.5)  # 78 zeros and 78 ones
    assert np.all(spread >= 1.0)
