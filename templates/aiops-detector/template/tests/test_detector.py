"""The ensemble: calibration to the false-alarm rate, what each detector sees, the context."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from app.detector import (
    MIN_THRESHOLD,
    MIN_TRAINING_POINTS,
    WARMUP_STEPS,
    Detector,
    NotEnoughDataError,
    alarm_line,
    features_for,
    train_detector,
)
from app.features import WINDOWS
from app.series import Series

from .synthetic import POINTS_PER_DAY, STEP, Anomaly, level, series

LATER = datetime(2026, 3, 16, tzinfo=UTC)  # a Monday, after the 14 training days


@pytest.fixture(scope="module")
def detector() -> Detector:
    """Two weeks of the synthetic metric, calibrated to 1% false alarms."""
    return train_detector([series(14, seed=11)], false_alarm_rate=0.01)


def test_each_line_leaves_half_the_target_on_the_training_window(detector: Detector) -> None:
    """Each detector's own line for 0.5% of the training window; fresh data near the 1%."""
    calibration = detector.calibration
    assert calibration.training_points == 14 * POINTS_PER_DAY
    training = detector.scores(series(14, seed=11))
    assert 0.004 <= np.mean(training.forest > 1.0) <= 0.005  # read off 20 training points
    assert np.mean(training.seasonal > 1.0) <= 0.005  # Gaussian noise: at the MIN_THRESHOLD
    # The line is a training score: that point may round to either side of it.
    share = np.mean(training.combined > 1.0)
    assert share == pytest.approx(calibration.training_alarm_rate, abs=1.5 / len(training.forest))
    assert calibration.training_alarm_rate <= 0.01
    fresh = detector.scores(series(7, seed=12, start=LATER)).combined
    assert 0.002 < np.mean(fresh > 1.0) < 0.03  # the same process, never seen: near the target


def test_a_lower_target_alarms_less() -> None:
    """0.1% alarms need a higher forest line than 1%, and fire less on new data."""
    item = series(14, seed=11)
    strict = train_detector([item], false_alarm_rate=0.001)
    loose = train_detector([item], false_alarm_rate=0.01)
    # The forest's line, in its raw scores: its stored scale times the shared threshold.
    line = {
        name: model.calibration.forest_scale * model.calibration.threshold
        for name, model in (("strict", strict), ("loose", loose))
    }
    assert line["strict"] > line["loose"]
    assert strict.calibration.threshold >= loose.calibration.threshold >= MIN_THRESHOLD
    assert strict.calibration.training_alarm_rate <= 0.001
    fresh = series(7, seed=12, start=LATER)
    strict_share = np.mean(strict.scores(fresh).combined > 1.0)
    assert strict_share < np.mean(loose.scores(fresh).combined > 1.0)


def test_the_alarm_line_is_read_off_the_scores_or_extrapolated_from_their_tail() -> None:
    """Enough scores above it: the quantile; a rarer target: an exponential tail beyond them."""
    scores = np.random.default_rng(4).exponential(1.0, 20_000)
    assert alarm_line(scores, 0.01) == pytest.approx(np.quantile(scores, 0.99), rel=0.01)
    few = scores[:600]  # two days at 5-minute steps: 0.05% of it is 0.3 of a point
    line = alarm_line(few, 0.0005)
    assert line > few.max()
    assert line == pytest.approx(np.log(1 / 0.0005), abs=1.0)  # the exponential's own quantile
    assert alarm_line(np.full(600, 0.1), 0.0005) == MIN_THRESHOLD


def test_one_odd_point_is_not_an_incident_two_in_a_row_are(detector: Detector) -> None:
    """Five scales up alarms for two points in a row; alone it counts half, under the line."""
    assert detector.calibration.threshold == pytest.approx(MIN_THRESHOLD)  # Gaussian noise
    lone = series(2, seed=20, start=LATER, anomalies=[Anomaly(300, 1, 15.0)])  # noise 3
    pair = series(2, seed=20, start=LATER, anomalies=[Anomaly(300, 2, 15.0)])
    assert lone.timestamps[300] not in [p.timestamp for p in detector.detect(lone).anomalies]
    found = [p for p in detector.detect(pair).anomalies if p.seasonal]
    assert pair.timestamps[301] in [p.timestamp for p in found]


def test_a_spike_is_one_critical_window(detector: Detector) -> None:
    """+60 for half an hour on a noise of 3: found, merged, critical, in its place."""
    spiked = series(3, seed=13, start=LATER, anomalies=[Anomaly(400, 6, 60.0)])
    found = detector.detect(spiked)
    spike = [
        w
        for w in found.windows
        if w.start <= spiked.timestamps[405] and w.end >= spiked.timestamps[400]
    ]
    assert len(spike) == 1
    (window,) = spike
    assert window.severity == "critical" and window.peak_score >= 2
    assert window.start == spiked.timestamps[400]
    # The short window's statistics remember the spike for WINDOWS[0] steps after it.
    assert spiked.timestamps[405] <= window.end <= spiked.timestamps[405 + WINDOWS[0]]
    assert len(found.windows) <= 4  # a few false alarms at most in three days


def test_a_value_wrong_for_its_hour_is_seen_by_the_seasonal_baseline(detector: Detector) -> None:
    """The daytime level at 02:00 is ordinary overall but not at night."""
    night = series(2, seed=14, start=LATER, anomalies=[Anomaly(24, 3, 55.0)])  # 02:00-02:15
    found = detector.detect(night)
    hits = [p for p in found.anomalies if 24 <= (p.timestamp - night.timestamps[0]) / STEP < 27]
    assert hits and all(p.seasonal for p in hits)


def test_a_jittering_metric_is_seen_by_the_forest(detector: Detector) -> None:
    """Two hours flipping 12 above and below the expected level: the forest sees the shape.

    The baseline sees the largest swings too; the forest's evidence is what the changes and
    the spread add, and it needs the jitter to last (three points in a row at least).
    """
    item = series(2, seed=15, start=LATER)
    values = item.values.copy()
    part = slice(300, 324)
    values[part] = level(item.timestamps[part]) + 12.0 * np.where(np.arange(24) % 2, 1.0, -1.0)
    jitter = Series({}, item.timestamps, values)
    scores = detector.scores(jitter)
    assert np.all(scores.forest[300:302] < 1.0)  # not on its first points
    assert np.any(scores.forest[part] > 1.0)
    assert np.all(detector.scores(item).forest[part] < 1.0)  # nor without the jitter
    inside = [
        w
        for w in detector.detect(jitter).windows
        if jitter.timestamps[300] <= w.peak_at <= jitter.timestamps[330]
    ]
    assert inside and "both" in {w.detector for w in inside}


def test_a_new_shape_that_stays_is_strange_for_half_a_day_not_for_ever(
    detector: Detector,
) -> None:
    """A jitter from the second day on: alarms at first, the recent normal a day later.

    The forest learns its own recent scores and the baseline its recent spread.
    """
    item = series(3, seed=21, start=LATER)
    values = item.values.copy()
    later = slice(POINTS_PER_DAY, None)
    flips = np.where(np.arange(2 * POINTS_PER_DAY) % 2, 1.0, -1.0)
    values[later] = level(item.timestamps[later]) + 12.0 * flips
    scores = detector.scores(Series({}, item.timestamps, values))
    first_hours = slice(POINTS_PER_DAY, POINTS_PER_DAY + 72)
    assert np.mean(scores.forest[first_hours] > 1.0) > 0.1
    assert not np.any(scores.combined[2 * POINTS_PER_DAY :] > 1.0)


def test_the_first_points_without_context_are_judged_by_the_baseline_only(
    detector: Detector,
) -> None:
    """A spike before the longest window is full: the forest stays silent, the baseline not."""
    early = series(1, seed=16, start=LATER, anomalies=[Anomaly(3, 1, 80.0)])
    scores = detector.scores(early)
    assert np.all(scores.forest[:WARMUP_STEPS] == 0.0)
    assert scores.seasonal[3] > 1.0
    later = detector.detect(early, since=float(early.timestamps[10]))
    assert all(p.timestamp >= early.timestamps[10] for p in later.anomalies)
    assert later.points == len(early) - 10


def test_time_features_need_a_whole_cycle_of_training() -> None:
    """Under a day: no hour of day; under a week: no day of week."""
    assert "hour_of_day" not in features_for([series(0.9)], STEP)
    assert "hour_of_day" in features_for([series(1)], STEP)
    assert "day_of_week" not in features_for([series(6.9)], STEP)
    assert "day_of_week" in features_for([series(7)], STEP)


def test_too_few_points_are_refused() -> None:
    """Learning needs MIN_TRAINING_POINTS per series."""
    short = series(MIN_TRAINING_POINTS * STEP / 86400 * 0.99)
    with pytest.raises(NotEnoughDataError, match=str(MIN_TRAINING_POINTS)):
        train_detector([short], false_alarm_rate=0.01)


def test_series_of_one_query_share_a_forest_but_keep_their_own_scale() -> None:
    """A series ten times larger is normal at its own size; an unknown series is not scored."""
    small = series(7, seed=17, labels={"pod": "a"})
    large = series(7, seed=18, labels={"pod": "b"})
    large = type(large)(large.labels, large.timestamps, large.values * 10)
    detector = train_detector([small, large], false_alarm_rate=0.01)
    assert set(detector.profiles) == {'{pod="a"}', '{pod="b"}'}
    assert detector.profiles['{pod="b"}'].center == pytest.approx(
        10 * detector.profiles['{pod="a"}'].center, rel=0.05
    )
    fresh = series(2, seed=19, start=LATER, labels={"pod": "b"})
    fresh = type(fresh)(fresh.labels, fresh.timestamps, fresh.values * 10)
    assert np.mean(detector.scores(fresh).combined > 1.0) < 0.05
    assert detector.profile(series(1, labels={"pod": "c"})) is None
