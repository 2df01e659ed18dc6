"""The robust seasonal baseline: median and MAD of a series per hour of the week.

A point's seasonal score is its distance from the median of its hour of the week (UTC), in
robust standard deviations (1.4826 x MAD, which equals the standard deviation for normal
data and ignores the anomalies the training window may hold). A slot with fewer than
``MIN_SLOT_POINTS`` training points borrows its hour of day across the week, and failing
that the whole series (a training window shorter than a week still has a daily profile).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from .features import hour_of_week
from .series import FloatArray

SLOTS = 168
MIN_SLOT_POINTS = 6
MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.2533  # mean absolute deviation -> sigma, when half the values are equal
# A quiet slot (say, nights at zero requests) must not turn every blip into an alarm: a
# slot's scale is at least this share of the whole series' scale.
MIN_SCALE_SHARE = 0.1
LEVELS = ("hour_of_week", "hour_of_day", "global")


def robust_center_scale(values: FloatArray) -> tuple[float, float]:
    """Return the median and the robust standard deviation of ``values`` (scale >= 0)."""
    if values.size == 0:
        return 0.0, 0.0
    center = float(np.median(values))
    deviations = np.abs(values - center)
    scale = MAD_TO_SIGMA * float(np.median(deviations))
    if scale == 0.0:  # more than half the values equal the median
        scale = MEAN_AD_TO_SIGMA * float(np.mean(deviations))
    return center, scale


def scale_floor(center: float, scale: float) -> float:
    """Return the smallest scale used for a series of this median and scale (never zero)."""
    return max(MIN_SCALE_SHARE * scale, 1e-6 * max(1.0, abs(center)))


@dataclasses.dataclass(frozen=True, eq=False)
class SeasonalBaseline:
    """Per hour-of-week slot: the expected value, its scale, and where they came from."""

    medians: FloatArray  # (168,)
    scales: FloatArray  # (168,), every one > 0
    levels: NDArray[np.int64]  # (168,), index into LEVELS
    counts: NDArray[np.int64]  # (168,), training points in the slot

    def expected(self, timestamps: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Return the expected value and scale at each timestamp."""
        slots = hour_of_week(timestamps)
        return self.medians[slots], self.scales[slots]

    def scores(self, timestamps: FloatArray, values: FloatArray) -> FloatArray:
        """Return each point's distance from its slot's median, in robust standard deviations."""
        medians, scales = self.expected(timestamps)
        return np.asarray(np.abs(values - medians) / scales, dtype=np.float64)

    def level_counts(self) -> dict[str, int]:
        """Return how many slots use each level (for the model card)."""
        return {level: int(np.sum(self.levels == i)) for i, level in enumerate(LEVELS)}


def fit_seasonal(timestamps: FloatArray, values: FloatArray) -> SeasonalBaseline:
    """Fit the baseline on a training series (at least one point)."""
    if values.size == 0:
        raise ValueError("a seasonal baseline needs at least one point")
    global_center, global_scale = robust_center_scale(values)
    floor = scale_floor(global_center, global_scale)
    slots = hour_of_week(timestamps)
    daily = np.mod(slots, 24)
    medians = np.full(SLOTS, global_center)
    scales = np.full(SLOTS, max(global_scale, floor))
    levels = np.full(SLOTS, LEVELS.index("global"), dtype=np.int64)
    counts = np.bincount(slots, minlength=SLOTS).astype(np.int64)
    for hour in range(24):
        in_hour = values[daily == hour]
        if in_hour.size >= MIN_SLOT_POINTS:
            center, scale = robust_center_scale(in_hour)
            same_hour = np.arange(hour, SLOTS, 24)
            medians[same_hour], scales[same_hour] = center, max(scale, floor)
            levels[same_hour] = LEVELS.index("hour_of_day")
    for slot in np.flatnonzero(counts >= MIN_SLOT_POINTS):
        center, scale = robust_center_scale(values[slots == slot])
        medians[slot], scales[slot] = center, max(scale, floor)
        levels[slot] = LEVELS.index("hour_of_week")
    return SeasonalBaseline(medians, scales, levels, counts)
