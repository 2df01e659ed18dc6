"""The holdout: how a model trained like this one does on days it did not learn from.

The model registry compares versions by these figures. For each source, the training window
is split in time: a model is trained exactly as the served one, on the first
``1 - HOLDOUT_SHARE`` of the window, and judged on the newest ``HOLDOUT_SHARE`` (read with the
context before the cut that its features and recent level need, as ``POST /detect`` does).
The served model itself learns from the whole window; the holdout says how well the method
and its settings do on this data, one version against the next.

- **The held-out days as they are.** ``holdout_alarm_rate`` is the share of held-out points
  above the alarm line and ``holdout_alarm_events_per_1000`` the anomaly windows per 1,000
  points. The data carries no labels, so these count every alarm: on normal days, false
  alarms.
- **Known anomalies.** A copy of the held-out days gets short upward spikes
  (``SPIKE_POINTS`` points every ``SPIKE_EVERY_STEPS`` steps, of ``SPIKE_SIGMAS`` robust
  standard deviations of their hour's baseline in turn) and is scored in NAB's window style:
  ``holdout_recall`` is the share of spikes an anomaly window covers, ``holdout_precision``
  the share of windows covering a spike, and ``holdout_f1`` their harmonic mean, the
  primary metric (higher is better). A detector that alarms on everything loses precision;
  one that never alarms loses recall.

A series whose part before the cut is too short to train on is left out; a source with none
left contributes nothing (``holdout_sources`` counts those evaluated).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from .detector import (
    MIN_TRAINING_POINTS,
    Detector,
    NotEnoughDataError,
    detection_of,
    train_detector,
)
from .series import Series

HOLDOUT_SHARE = 0.2
SPIKE_EVERY_STEPS = 144  # half a day at 5-minute steps: spikes far enough apart to be events
SPIKE_POINTS = 3
SPIKE_SIGMAS = (6.0, 12.0, 4.0, 9.0)  # in turn: a line above 4 misses some, above 12 most
PRIMARY_METRIC = "holdout_f1"
PRIMARY_METRIC_DIRECTION = "higher"
PARAMETERS: Mapping[str, object] = {
    "holdout_share": HOLDOUT_SHARE,
    "holdout_spike_every_steps": SPIKE_EVERY_STEPS,
    "holdout_spike_points": SPIKE_POINTS,
    "holdout_spike_sigmas": ",".join(f"{sigma:g}" for sigma in SPIKE_SIGMAS),
}


@dataclasses.dataclass(frozen=True)
class HoldoutCounts:
    """What the holdout counted; pooled over every series of every source evaluated."""

    sources: int = 0
    points: int = 0
    alarm_points: int = 0
    alarm_events: int = 0
    spikes: int = 0
    spikes_found: int = 0
    windows: int = 0  # anomaly windows of the copy with spikes
    windows_on_spikes: int = 0

    def __add__(self, other: HoldoutCounts) -> HoldoutCounts:
        return HoldoutCounts(
            *(
                getattr(self, field.name) + getattr(other, field.name)
                for field in dataclasses.fields(self)
            )
        )

    def metrics(self) -> dict[str, float]:
        """Return the MLflow metrics: counts always, rates once a point was held out."""
        figures: dict[str, float] = {
            "holdout_sources": float(self.sources),
            "holdout_points": float(self.points),
            "holdout_spikes": float(self.spikes),
        }
        if not self.points:
            return figures
        precision = self.windows_on_spikes / self.windows if self.windows else 0.0
        recall = self.spikes_found / self.spikes if self.spikes else 0.0
        total = precision + recall
        figures |= {
            "holdout_alarm_rate": self.alarm_points / self.points,
            "holdout_alarm_events_per_1000": 1000.0 * self.alarm_events / self.points,
            "holdout_precision": precision,
            "holdout_recall": recall,
            PRIMARY_METRIC: 2 * precision * recall / total if total else 0.0,
        }
        return figures


def cut_of(series: Sequence[Series]) -> float:
    """Return the time splitting the series' common span: learnt before it, judged from it."""
    first = min(float(item.timestamps[0]) for item in series)
    last = max(float(item.timestamps[-1]) for item in series)
    return first + (1.0 - HOLDOUT_SHARE) * (last - first)


def spiked(
    detector: Detector, item: Series, cut: float
) -> tuple[Series, list[tuple[float, float]]]:
    """Return ``item`` with spikes added after ``cut``, and each spike's first and last time."""
    held = np.flatnonzero(item.timestamps >= cut)
    if held.size < SPIKE_POINTS:
        return item, []
    count = max(1, held.size // SPIKE_EVERY_STEPS)
    profile = detector.profile(item)
    assert profile is not None  # only series the holdout model learnt are scored
    values = item.values.copy()
    spikes = []
    for number in range(count):
        middle = int((number + 0.5) * held.size / count)
        first = min(max(0, middle - SPIKE_POINTS // 2), held.size - SPIKE_POINTS)
        where = held[first : first + SPIKE_POINTS]
        _, scales = profile.seasonal.expected(item.timestamps[where])
        values[where] += SPIKE_SIGMAS[number % len(SPIKE_SIGMAS)] * scales
        spikes.append((float(item.timestamps[where[0]]), float(item.timestamps[where[-1]])))
    return Series(item.labels, item.timestamps, values), spikes


def _judged(detector: Detector, item: Series, cut: float) -> HoldoutCounts:
    """Score one series' held-out points as they are and with spikes added."""
    item = item.since(cut - detector.context_seconds)  # what detection would read
    gap = detector.gap_seconds
    clean = detection_of(detector.scores(item), item.labels, gap, since=cut)
    copy, spikes = spiked(detector, item, cut)
    found = detection_of(detector.scores(copy), item.labels, gap, since=cut).windows
    # A window covers a spike when it overlaps it or starts within the gap tolerance after.
    covers = [
        [window.start <= end + gap and window.end >= start for start, end in spikes]
        for window in found
    ]
    return HoldoutCounts(
        points=clean.points,
        alarm_points=len(clean.anomalies),
        alarm_events=len(clean.windows),
        spikes=len(spikes),
        spikes_found=sum(any(row[i] for row in covers) for i in range(len(spikes))),
        windows=len(found),
        windows_on_spikes=sum(any(row) for row in covers),
    )


def evaluate(
    series: Sequence[Series], false_alarm_rate: float, step: float | None
) -> HoldoutCounts:
    """Train on the first part of a source's series and judge the newest part (see the module)."""
    if not series:
        return HoldoutCounts()
    cut = cut_of(series)
    usable = [
        item
        for item in series
        if int(np.sum(item.timestamps < cut)) >= MIN_TRAINING_POINTS
        and bool(np.any(item.timestamps >= cut))
    ]
    if not usable:
        return HoldoutCounts()
    before = [item.timestamps < cut for item in usable]
    early = [
        Series(item.labels, item.timestamps[kept], item.values[kept])
        for item, kept in zip(usable, before, strict=True)
    ]
    try:
        detector = train_detector(early, false_alarm_rate, step)
    except NotEnoughDataError:
        return HoldoutCounts()
    counts = HoldoutCounts(sources=1)
    for item in usable:
        counts += _judged(detector, item, cut)
    return counts
