"""The ensemble: an IsolationForest on per-point features plus the robust seasonal baseline.

Training, for the series of one query (or one inline series):

1. each series is normalized by its own median and robust scale, so series of different
   sizes share one forest, and gets its own seasonal baseline;
2. an IsolationForest learns the features (:mod:`.features`) of every point with its full
   context (the first ``max(WINDOWS)`` steps of a series only have part of it);
3. both detectors' scores become robust z-scores on the training window (the forest's by
   the median and MAD of its training scores), combined by taking the larger;
4. the alarm threshold is the ``1 - false_alarm_rate`` quantile of the combined training
   scores (at least ``MIN_THRESHOLD``), so about that share of the training window would
   have alarmed.

Detection reports scores relative to the threshold: above 1 is anomalous, and the detector
whose own score is above 1 is the one that fired.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest

from .features import FEATURES, SECONDS_PER_DAY, WINDOWS, feature_matrix, typical_step
from .seasonal import SeasonalBaseline, fit_seasonal, robust_center_scale, scale_floor
from .series import FloatArray, Series
from .windows import AnomalyPoint, AnomalyWindow, merge_windows

N_ESTIMATORS = 100
RANDOM_STATE = 0  # the same data always trains the same model
MIN_TRAINING_POINTS = 200
MIN_THRESHOLD = 3.0  # robust standard deviations: a very regular window must not alarm at 1
CALIBRATION_SAMPLE = 50_000  # training points scored to calibrate (a sample beyond that)
GAP_TOLERANCE_STEPS = 3
WARMUP_STEPS = max(WINDOWS) - 1
MIN_WARM_POINTS = 50  # points with their full context, for the forest to learn from


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
            self.timestamps[kept], self.values[kept], self.forest[kept], self.seasonal[kept]
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
        """Return how much history before a point its features need."""
        return WARMUP_STEPS * self.step

    @property
    def gap_seconds(self) -> float:
        """Return the largest gap between anomalous points of one window."""
        return GAP_TOLERANCE_STEPS * self.step

    def profile(self, series: Series) -> SeriesProfile | None:
        """Return what was learnt about this series (None: it was not in the training)."""
        return self.profiles.get(series.key)

    def scores(self, series: Series) -> Scores:
        """Score every point of a series known to the model (a KeyError otherwise)."""
        profile = self.profiles[series.key]
        calibration = self.calibration
        raw, warm = _forest_scores(self, profile, series)
        forest = (raw - calibration.forest_center) / calibration.forest_scale
        forest = np.where(warm, np.maximum(forest, 0.0), 0.0)
        seasonal = profile.seasonal.scores(series.timestamps, series.values)
        threshold = calibration.threshold
        return Scores(series.timestamps, series.values, forest / threshold, seasonal / threshold)

    def detect(self, series: Series, since: float | None = None) -> SeriesDetection:
        """Return the anomalous points and windows at or after ``since`` (all by default).

        Points before ``since`` are context: they feed the rolling features only.
        """
        return detection_of(self.scores(series), series.labels, self.gap_seconds, since)


def detection_of(
    scores: Scores, labels: Mapping[str, str], gap_seconds: float, since: float | None = None
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


def _features(
    step: float, names: Sequence[str], profile: SeriesProfile, series: Series
) -> FloatArray:
    normalized = (series.values - profile.center) / profile.scale
    matrix = feature_matrix(series.timestamps, normalized, step)
    return matrix[:, [FEATURES.index(name) for name in names]]


def _forest_scores(
    detector: Detector,
    profile: SeriesProfile,
    series: Series,
    chosen: NDArray[np.intp] | None = None,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Return the forest's raw scores (higher: stranger) and which points have full context.

    ``chosen`` (indices) limits both to those points: features need the whole series, but
    only the chosen points are scored.
    """
    warm = _warm(series, detector.step)
    if chosen is not None:
        warm = warm.copy()
        warm[np.setdiff1d(np.arange(len(series)), chosen)] = False
    raw = np.zeros(len(series))
    if warm.any():
        matrix = _features(detector.step, detector.features, profile, series)
        raw[warm] = -detector.forest.score_samples(matrix[warm])
    if chosen is None:
        return raw, warm
    return raw[chosen], warm[chosen]


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
    """Normalize the forest's scores and place the threshold on the training window."""
    raws, warms, seasonals = [], [], []
    rng = np.random.default_rng(RANDOM_STATE)
    total = sum(len(item) for item in series)
    share = min(1.0, CALIBRATION_SAMPLE / total)
    for item in series:
        chosen = np.arange(len(item))
        if share < 1.0:  # a sample of each series keeps calibration fast on 100 long series
            chosen = np.sort(rng.choice(len(item), max(1, int(share * len(item))), replace=False))
        profile = detector.profiles[item.key]
        raw, warm = _forest_scores(detector, profile, item, chosen)
        raws.append(raw)
        warms.append(warm)
        seasonals.append(profile.seasonal.scores(item.timestamps, item.values)[chosen])
    raw, warm, seasonal = np.concatenate(raws), np.concatenate(warms), np.concatenate(seasonals)
    center, scale = robust_center_scale(raw[warm])
    scale = max(scale, scale_floor(center, scale))
    forest = np.where(warm, np.maximum((raw - center) / scale, 0.0), 0.0)
    combined = np.maximum(forest, seasonal)
    quantile = float(np.quantile(combined, 1.0 - false_alarm_rate, method="higher"))
    threshold = max(quantile, MIN_THRESHOLD)
    return Calibration(
        forest_center=center,
        forest_scale=scale,
        threshold=threshold,
        false_alarm_rate=false_alarm_rate,
        training_alarm_rate=float(np.mean(combined > threshold)),
        training_points=int(total),
    )
