"""The ensemble: an IsolationForest on per-point features plus the robust seasonal baseline.

Training, for the series of one query (or one inline series):

1. each series is normalized by its own median and robust scale, so series of different
   sizes share one forest, and gets its own seasonal baseline (:mod:`.seasonal`);
2. an IsolationForest learns the features (:mod:`.features`) of every point with its full
   context (the first ``max(WINDOWS)`` steps of a series only have part of it);
3. both detectors' scores become evidence (:mod:`.windows`). The baseline's: the distance
   from the slot's median and the recent level in robust standard deviations, a lone
   point counting half. The forest's: robust z-scores against its training scores and its
   own recent scores (a new regime that stays is strange for half a day, not for ever),
   the smallest of the last ``FOREST_SUSTAIN_POINTS`` (its features are windows of the
   series, so a change of shape shows on consecutive points);
4. each detector gets its own alarm line (:func:`alarm_line`) for half the target
   false-alarm rate on the training window: the noisier tail of one never sets the other's
   line, and together they stay near the target.

A forest never scores a point beyond its training extremes higher than the extremes
themselves (it is isolated as fast as the most extreme one), and its recent level absorbs a
lasting one: levels are the baseline's job, whose scores grow with the distance.

Detection reports scores relative to each detector's line: above 1 is anomalous, and the
detector whose own score is above 1 is the one that fired. The seasonal line is stored as
the threshold, and the forest's scale so that its own line falls on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest

from .features import FEATURES, SECONDS_PER_DAY, WINDOWS, feature_matrix, typical_step
from .seasonal import (
    RECENT_STEPS,
    REFRESH_STEPS,
    SeasonalBaseline,
    fit_seasonal,
    recent_drift,
    robust_center_scale,
    scale_floor,
)
from .series import FloatArray, Series
from .windows import AnomalyPoint, AnomalyWindow, corroborated, merge_windows, sustained

N_ESTIMATORS = 100
RANDOM_STATE = 0  # the same data always trains the same model
MIN_TRAINING_POINTS = 200
MIN_THRESHOLD = 3.0  # robust standard deviations: a very regular window must not alarm at 1
CALIBRATION_SAMPLE = 50_000  # training points scored to calibrate (the newest beyond that)
GAP_TOLERANCE_STEPS = 3
WARMUP_STEPS = max(WINDOWS) - 1
# History read before the first point asked for: the features' and the recent level's.
CONTEXT_STEPS = max(WARMUP_STEPS, RECENT_STEPS + REFRESH_STEPS)
MIN_WARM_POINTS = 50  # points with their full context, for the forest to learn from
FOREST_SUSTAIN_POINTS = 3  # consecutive points a forest alarm needs
MIN_TAIL_POINTS = 10  # training scores above a line for it to be read off them directly
TAIL_SHARE = 0.05  # the top of the training scores whose exponential tail is extrapolated


class NotEnoughDataError(ValueError):
    """No series has enough points to learn from."""


@dataclasses.dataclass(frozen=True)
class SeriesProfile:
    """What was learnt about one series: its normalization and its seasonal baseline."""

    labels: Mapping[str, str]
    center: float
    scale: float
    seasonal: SeasonalBaseline
    points: int
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class Calibration:
    """How the forest's scores are normalized and where the alarm line is."""

    forest_center: float
    forest_scale: float
    threshold: float
    false_alarm_rate: float
    training_alarm_rate: float
    training_points: int


@dataclasses.dataclass(frozen=True, eq=False)
class Scores:
    """Per point: both detectors' scores and the combined one, relative to the threshold."""

    timestamps: FloatArray
    values: FloatArray
    forest: FloatArray
    seasonal: FloatArray

    @property
    def combined(self) -> FloatArray:
        """Return the larger of the two scores (above 1: anomalous)."""
        return np.maximum(self.forest, self.seasonal)

    def between(self, start: float, end: float) -> Scores:
        """Return the points from ``start`` to ``end``, both included."""
        return self._kept((self.timestamps >= start) & (self.timestamps <= end))

    def newest(self, count: int) -> Scores:
        """Return the newest ``count`` points."""
        kept = np.zeros(self.timestamps.size, dtype=bool)
        kept[max(0, kept.size - count) :] = True
        return self._kept(kept)

    def _kept(self, kept: NDArray[np.bool_]) -> Scores:
        return Scores(
            self.timestamps[kept],
            self.values[kept],
            self.forest[kept],
            self.seasonal[kept],
        )


@dataclasses.dataclass(frozen=True)
class SeriesDetection:
    """The anomalies of one series in the range asked for."""

    labels: Mapping[str, str]
    points: int
    anomalies: list[AnomalyPoint]
    windows: list[AnomalyWindow]
    latest_score: float | None


@dataclasses.dataclass(frozen=True, eq=False)
class Detector:
    """A trained ensemble for the series of one query or one inline series."""

    step: float
    features: tuple[str, ...]
    forest: IsolationForest
    profiles: Mapping[str, SeriesProfile]
    calibration: Calibration

    @property
    def context_seconds(self) -> float:
        """Return how much history before a point its scores need (features, recent level)."""
        return CONTEXT_STEPS * self.step

    @property
    def gap_seconds(self) -> float:
        """Return the largest gap between anomalous points of one window."""
        return GAP_TOLERANCE_STEPS * self.step

    def profile(self, series: Series) -> SeriesProfile | None:
        """Return what was learnt about this series (None: it was not in the training)."""
        return self.profiles.get(series.key)

    def scores(self, series: Series) -> Scores:
        """Score every point of a series known to the model (a KeyError otherwise)."""
        parts = _parts(self, series)
        calibration = self.calibration
        forest = _forest_evidence(
            parts, calibration.forest_center, calibration.forest_scale, self.step
        )
        seasonal = _seasonal_evidence(parts, self.step)
        threshold = calibration.threshold
        return Scores(series.timestamps, series.values, forest / threshold, seasonal / threshold)

    def detect(self, series: Series, since: float | None = None) -> SeriesDetection:
        """Return the anomalous points and windows at or after ``since`` (all by default).

        Points before ``since`` are context: they feed the rolling features and the recent
        level only.
        """
        return detection_of(self.scores(series), series.labels, self.gap_seconds, since)


def detection_of(
    scores: Scores,
    labels: Mapping[str, str],
    gap_seconds: float,
    since: float | None = None,
) -> SeriesDetection:
    """Return the anomalous points of ``scores`` at or after ``since``, merged into windows."""
    keep = np.ones(scores.timestamps.size, dtype=bool)
    if since is not None:
        keep = scores.timestamps >= since
    combined = scores.combined
    anomalies = [
        AnomalyPoint(
            timestamp=float(scores.timestamps[i]),
            value=float(scores.values[i]),
            score=float(combined[i]),
            isolation_forest=bool(scores.forest[i] > 1.0),
            seasonal=bool(scores.seasonal[i] > 1.0),
        )
        for i in np.flatnonzero(keep & (combined > 1.0))
    ]
    kept = combined[keep]
    return SeriesDetection(
        labels=dict(labels),
        points=int(kept.size),
        anomalies=anomalies,
        windows=merge_windows(anomalies, gap_seconds),
        latest_score=float(kept[-1]) if kept.size else None,
    )


def _warm(series: Series, step: float) -> NDArray[np.bool_]:
    """Return which points have the full context of the longest window behind them."""
    if not len(series):
        return np.zeros(0, dtype=bool)
    return np.asarray(series.timestamps - series.timestamps[0] >= WARMUP_STEPS * step - 1e-9)


def alarm_line(scores: FloatArray, rate: float) -> float:
    """Return the line about ``rate`` of ``scores`` exceed (at least ``MIN_THRESHOLD``).

    With at least ``MIN_TAIL_POINTS`` scores above it, the line is read off the scores. A
    rarer target is beyond what the window shows (0.05 % of two days is not one point), so
    the tail above the ``1 - TAIL_SHARE`` quantile is fitted with an exponential, as
    peaks-over-threshold methods do, and the line is where that tail leaves ``rate``; never
    below the score it must exceed.
    """
    if scores.size == 0:
        return MIN_THRESHOLD
    line = float(np.quantile(scores, 1.0 - rate, method="higher"))
    if rate * scores.size < MIN_TAIL_POINTS and rate < TAIL_SHARE:
        base = float(np.quantile(scores, 1.0 - TAIL_SHARE))
        excess = scores[scores > base] - base
        if excess.size:
            line = max(line, base + float(np.mean(excess)) * float(np.log(TAIL_SHARE / rate)))
    return max(line, MIN_THRESHOLD)


@dataclasses.dataclass(frozen=True, eq=False)
class _Parts:
    """What both detectors see of one series."""

    timestamps: FloatArray
    residuals: FloatArray  # standardized: against the slot's median and the recent level
    raw: FloatArray  # the forest's scores (higher: stranger), 0 where not warm
    warm: NDArray[np.bool_]


def _features(
    step: float, names: Sequence[str], profile: SeriesProfile, series: Series
) -> FloatArray:
    normalized = (series.values - profile.center) / profile.scale
    matrix = feature_matrix(series.timestamps, normalized, step)
    return matrix[:, [FEATURES.index(name) for name in names]]


def _parts(detector: Detector, series: Series) -> _Parts:
    """Return the baseline's residuals of a series and the forest's raw scores."""
    profile = detector.profiles[series.key]
    residuals = profile.seasonal.residuals(series.timestamps, series.values, detector.step)
    warm = _warm(series, detector.step)
    raw = np.zeros(len(series))
    if warm.any():
        matrix = _features(detector.step, detector.features, profile, series)
        raw[warm] = -detector.forest.score_samples(matrix[warm])
    return _Parts(series.timestamps, residuals, raw, warm)


def _forest_evidence(parts: _Parts, center: float, scale: float, step: float) -> FloatArray:
    """Return the forest's evidence: z-scores against training and the recent past, sustained."""
    warm = parts.warm
    distance = parts.raw[warm] - center
    level, spread = recent_drift(parts.timestamps[warm], distance, scale, step)
    scores = np.zeros(parts.raw.size)
    scores[warm] = np.maximum((distance - level) / (scale * spread), 0.0)
    return sustained(parts.timestamps, scores, GAP_TOLERANCE_STEPS * step, FOREST_SUSTAIN_POINTS)


def _seasonal_evidence(parts: _Parts, step: float) -> FloatArray:
    """Return the baseline's evidence: its distances, a lone point counting half."""
    return corroborated(parts.timestamps, np.abs(parts.residuals), GAP_TOLERANCE_STEPS * step)


def trainable(series: Sequence[Series]) -> tuple[list[Series], list[Series]]:
    """Split series into those with enough points to learn from and the others."""
    enough = [item for item in series if len(item) >= MIN_TRAINING_POINTS]
    return enough, [item for item in series if len(item) < MIN_TRAINING_POINTS]


def features_for(series: Sequence[Series], step: float) -> tuple[str, ...]:
    """Return the features a window this long can teach: time of day and week need a cycle.

    A forest that never saw a Thursday would find every Thursday strange.
    """
    span = max(float(item.timestamps[-1] - item.timestamps[0]) for item in series) + step
    names = [name for name in FEATURES if name not in ("hour_of_day", "day_of_week")]
    if span >= SECONDS_PER_DAY:
        names.append("hour_of_day")
    if span >= 7 * SECONDS_PER_DAY:
        names.append("day_of_week")
    return tuple(names)


def train_detector(
    series: Sequence[Series], false_alarm_rate: float, step: float | None = None
) -> Detector:
    """Train on series of at least ``MIN_TRAINING_POINTS`` points each (else NotEnoughDataError)."""
    if not series or any(len(item) < MIN_TRAINING_POINTS for item in series):
        raise NotEnoughDataError(f"each series needs at least {MIN_TRAINING_POINTS} points")
    if not 0 < false_alarm_rate < 1:
        raise ValueError("the false-alarm rate must be between 0 and 1")
    step = step or float(np.median([typical_step(item.timestamps) for item in series]))
    names = features_for(series, step)
    profiles: dict[str, SeriesProfile] = {}
    rows: list[FloatArray] = []
    for item in series:
        center, scale = robust_center_scale(item.values)
        profile = SeriesProfile(
            labels=dict(item.labels),
            center=center,
            scale=max(scale, scale_floor(center, scale)),
            seasonal=fit_seasonal(item.timestamps, item.values),
            points=len(item),
            start=float(item.timestamps[0]),
            end=float(item.timestamps[-1]),
        )
        profiles[item.key] = profile
        rows.append(_features(step, names, profile, item)[_warm(item, step)])
    matrix = np.concatenate(rows)
    if len(matrix) < MIN_WARM_POINTS:  # points bunched at the start of a long, empty window
        raise NotEnoughDataError(
            f"only {len(matrix)} points have {WARMUP_STEPS} steps ({WARMUP_STEPS * step:g}s) of "
            f"history before them; at least {MIN_WARM_POINTS} are needed"
        )
    forest = IsolationForest(n_estimators=N_ESTIMATORS, random_state=RANDOM_STATE)
    forest.fit(matrix)
    draft = Detector(step, names, forest, profiles, Calibration(0.0, 1.0, 1.0, 0.0, 0.0, 0))
    return dataclasses.replace(draft, calibration=calibrate(draft, series, false_alarm_rate))


def calibrate(detector: Detector, series: Sequence[Series], false_alarm_rate: float) -> Calibration:
    """Normalize the forest's scores and place each detector's line on the training window.

    Each line is for half the rate, so together they stay near it. Beyond
    ``CALIBRATION_SAMPLE`` points, the newest share of each series is scored (after the
    context its scores need).
    """
    total = sum(len(item) for item in series)
    share = min(1.0, CALIBRATION_SAMPLE / total)
    scored: list[tuple[_Parts, NDArray[np.bool_]]] = []
    for item in series:
        kept = min(len(item), int(np.ceil(share * len(item))))
        first = max(0, len(item) - kept - CONTEXT_STEPS)
        parts = _parts(detector, Series(item.labels, item.timestamps[first:], item.values[first:]))
        newest = np.zeros(parts.raw.size, dtype=bool)
        newest[-kept:] = True
        scored.append((parts, newest))
    center, scale = robust_center_scale(
        np.concatenate([parts.raw[parts.warm & newest] for parts, newest in scored])
    )
    scale = max(scale, scale_floor(center, scale))
    forests, warm_forests, seasonals = [], [], []
    for parts, newest in scored:
        forest = _forest_evidence(parts, center, scale, detector.step)
        forests.append(forest[newest])
        warm_forests.append(forest[newest & parts.warm])
        seasonals.append(_seasonal_evidence(parts, detector.step)[newest])
    forest, seasonal = np.concatenate(forests), np.concatenate(seasonals)
    forest_line = alarm_line(np.concatenate(warm_forests), false_alarm_rate / 2)
    seasonal_line = alarm_line(seasonal, false_alarm_rate / 2)
    return Calibration(
        forest_center=center,
        forest_scale=scale * forest_line / seasonal_line,  # its line falls on the threshold
        threshold=seasonal_line,
        false_alarm_rate=false_alarm_rate,
        training_alarm_rate=float(np.mean((forest > forest_line) | (seasonal > seasonal_line))),
        training_points=int(total),
    )
