"""The holdout: a model trained like the served one, judged on the newest days it never saw."""

from __future__ import annotations

import numpy as np
import pytest

from app.detector import train_detector
from app.holdout import (
    HOLDOUT_SHARE,
    SPIKE_EVERY_STEPS,
    SPIKE_POINTS,
    SPIKE_SIGMAS,
    HoldoutCounts,
    cut_of,
    evaluate,
    spiked,
)
from app.series import Series

from .synthetic import Anomaly, series


def _early(item: Series, cut: float) -> Series:
    kept = item.timestamps < cut
    return Series(item.labels, item.timestamps[kept], item.values[kept])


def test_the_figures_come_from_the_newest_days_only() -> None:
    """An incident in the held-out days raises the alarm figures; one in the training days not."""
    held = evaluate([series(6, seed=61, anomalies=[Anomaly(1600, 24, 80.0)])], 0.001, None)
    learnt = evaluate([series(6, seed=61, anomalies=[Anomaly(400, 24, 80.0)])], 0.001, None)
    assert held.points == learnt.points == round(6 * 288 * HOLDOUT_SHARE)
    assert held.alarm_events >= 1 and held.alarm_points >= 12
    assert learnt.alarm_events == 0
    assert held.metrics()["holdout_alarm_rate"] > learnt.metrics()["holdout_alarm_rate"]


def test_spikes_go_into_the_held_out_days_sized_by_their_hour() -> None:
    """Every SPIKE_EVERY_STEPS held-out points, SPIKE_POINTS points raised by the sizes in turn."""
    item = series(10, seed=62)
    cut = cut_of([item])
    detector = train_detector([_early(item, cut)], 0.001)
    copy, spikes = spiked(detector, item, cut)
    held = int(np.sum(item.timestamps >= cut))
    assert len(spikes) == held // SPIKE_EVERY_STEPS >= 3
    raised = np.flatnonzero(copy.values != item.values)
    assert raised.size == SPIKE_POINTS * len(spikes) and item.timestamps[raised].min() >= cut
    profile = detector.profile(item)
    assert profile is not None
    _, scales = profile.seasonal.expected(item.timestamps[raised])
    sizes = (copy.values - item.values)[raised] / scales
    expected = [SPIKE_SIGMAS[i % len(SPIKE_SIGMAS)] for i in range(len(spikes))]
    assert sizes == pytest.approx(np.repeat(expected, SPIKE_POINTS))
    assert [start for start, _ in spikes] == sorted(item.timestamps[raised][::SPIKE_POINTS])


def test_a_looser_line_finds_more_spikes_and_raises_more_alarms() -> None:
    """The false-alarm rate trains the holdout model: recall and alarms move with it."""
    item = series(8, seed=1)
    strict, loose = evaluate([item], 0.001, None), evaluate([item], 0.05, None)
    assert loose.spikes_found > strict.spikes_found
    assert loose.alarm_points > strict.alarm_points


def test_precision_recall_and_f1_from_the_counts() -> None:
    """Windows covering a spike over all windows; spikes covered over all spikes."""
    counts = HoldoutCounts(1, 1000, 5, 2, 4, 3, 6, 3)
    figures = counts.metrics()
    assert figures["holdout_precision"] == 0.5 and figures["holdout_recall"] == 0.75
    assert figures["holdout_f1"] == pytest.approx(0.6)
    assert figures["holdout_alarm_rate"] == 0.005
    assert figures["holdout_alarm_events_per_1000"] == 2.0
    silent = HoldoutCounts(1, 1000, 0, 0, 4, 0, 0, 0).metrics()
    assert silent["holdout_precision"] == silent["holdout_f1"] == 0.0


def test_a_series_too_short_to_split_is_left_out() -> None:
    """Before the cut it must still have enough points to train on; else only counts remain."""
    counts = evaluate([series(0.8, seed=63)], 0.001, None)
    assert counts == HoldoutCounts()
    assert counts.metrics() == {
        "holdout_sources": 0.0,
        "holdout_points": 0.0,
        "holdout_spikes": 0.0,
    }
