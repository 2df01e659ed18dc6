"""The robust seasonal baseline: median and MAD of a series per hour of the week.

A point's seasonal score is its distance from the median of its hour of the week (UTC), in
robust standard deviations (1.4826 x MAD, which equals the standard deviation for normal
data and ignores the anomalies the training window may hold).

A profile is only as fine as the training window can support. A slot of the week gets its
own median when its points come from at least ``MIN_CYCLES`` different weeks, an hour of
the day when they come from at least ``MIN_CYCLES`` different days (a slot seen once holds
one afternoon, not what afternoons look like), and either profile is used only when it
predicts the points of a cycle it did not learn from (each day, or each week, held out in
turn) clearly better than the coarser one (``MIN_PROFILE_GAIN``): a flat metric keeps one
median for the whole series instead of 24 noisy ones. Slots without enough points borrow
the coarser level.

A slot's scale is at least ``MIN_SCALE_SHARE`` of the series' typical distance from its
profile: a quiet slot (nights at zero requests) or one of repeated readings has a tiny MAD
that would turn every blip into an alarm.

Normal drifts. Each point is also judged against the recent past (:func:`recent_drift`,
from the ``RECENT_STEPS`` steps before it, re-estimated every ``REFRESH_STEPS`` steps from
past points only): a lasting shift alarms when it happens and becomes the new normal once
it holds more than half of that window, and a noisier recent past widens the scale (never
narrows it). A shift of more than ``MAX_DRIFT`` robust standard deviations is an incident,
not drift: it stays anomalous until the model is trained on it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from .features import SECONDS_PER_DAY, hour_of_week
from .series import FloatArray

SLOTS = 168
MIN_SLOT_POINTS = 6
MIN_CYCLES = 2  # days (hour of day) or weeks (hour of week) a profile slot must have seen
# How much better than one median a profile must predict held-out cycles: on pure noise,
# 24 medians do within a few percent of one by chance.
MIN_PROFILE_GAIN = 0.05
MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.2533  # mean absolute deviation -> sigma, when half the values are equal
MIN_SCALE_SHARE = 0.5  # of the typical distance from the profile: the smallest slot scale
LEVELS = ("hour_of_week", "hour_of_day", "global")
RECENT_STEPS = 288  # the recent past a point is also judged against (a day at 5-minute steps)
REFRESH_STEPS = 12  # how often the recent level is re-estimated (an hour at 5-minute steps)
MIN_RECENT_SHARE = 0.5  # of RECENT_STEPS present before the recent level is trusted
MAX_DRIFT = 3.0  # robust standard deviations the recent level may move the expected value
# Mondays 00:00 UTC start the weeks that count cycles (1970-01-05 was a Monday).
_WEEK_ORIGIN = 4 * SECONDS_PER_DAY


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
    """Return the smallest scale used for values of this median and typical distance (> 0)."""
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
        """Return each point's distance from its slot's median, in robust standard deviations.

        The trained baseline alone; detection also judges against the recent past
        (:meth:`residuals`).
        """
        medians, scales = self.expected(timestamps)
        return np.asarray(np.abs(values - medians) / scales, dtype=np.float64)

    def residuals(self, timestamps: FloatArray, values: FloatArray, step: float) -> FloatArray:
        """Return the standardized residuals, judged against the recent past as well.

        The sign says above or below normal; the absolute value is the seasonal score.
        """
        medians, scales = self.expected(timestamps)
        level, spread = recent_drift(timestamps, values - medians, scales, step)
        level = np.clip(level, -MAX_DRIFT * scales, MAX_DRIFT * scales)
        return np.asarray((values - medians - level) / (scales * spread), dtype=np.float64)

    def level_counts(self) -> dict[str, int]:
        """Return how many slots use each level (for the model card)."""
        return {level: int(np.sum(self.levels == i)) for i, level in enumerate(LEVELS)}


def _sorted_medians(
    groups: NDArray[np.int64], values: FloatArray, size: int
) -> tuple[FloatArray, NDArray[np.int64]]:
    """Return the median of ``values`` in each group ``0..size-1`` (NaN when empty), and counts."""
    order = np.lexsort((values, groups))
    ordered = values[order]
    counts = np.bincount(groups, minlength=size).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    medians = np.full(size, np.nan)
    filled = counts > 0
    low = starts[filled] + (counts[filled] - 1) // 2
    high = starts[filled] + counts[filled] // 2
    medians[filled] = (ordered[low] + ordered[high]) / 2
    return medians, counts


def _held_out_error(
    values: FloatArray, slots: NDArray[np.int64], size: int, cycles: NDArray[np.int64]
) -> tuple[float, float]:
    """Return the typical error predicting each cycle from the others: by slot, and overall.

    A slot the other cycles never saw is predicted by their overall median in both, so the
    comparison is only about the slots the profile would change.
    """
    errors_slot: list[FloatArray] = []
    errors_flat: list[FloatArray] = []
    for cycle in np.unique(cycles):
        held = cycles == cycle
        rest = ~held
        flat = float(np.median(values[rest]))
        medians, counts = _sorted_medians(slots[rest], values[rest], size)
        predicted = np.where(counts[slots[held]] >= MIN_SLOT_POINTS, medians[slots[held]], flat)
        errors_slot.append(np.abs(values[held] - predicted))
        errors_flat.append(np.abs(values[held] - flat))
    return float(np.median(np.concatenate(errors_slot))), float(
        np.median(np.concatenate(errors_flat))
    )


def _profile_helps(
    values: FloatArray, slots: NDArray[np.int64], size: int, cycles: NDArray[np.int64]
) -> bool:
    """Say whether a profile by ``slots`` predicts held-out cycles better than one median."""
    if np.unique(cycles).size < MIN_CYCLES:
        return False
    by_slot, flat = _held_out_error(values, slots, size, cycles)
    return by_slot < (1.0 - MIN_PROFILE_GAIN) * flat


def fit_seasonal(timestamps: FloatArray, values: FloatArray) -> SeasonalBaseline:
    """Fit the baseline on a training series (at least one point)."""
    if values.size == 0:
        raise ValueError("a seasonal baseline needs at least one point")
    global_center, global_scale = robust_center_scale(values)
    slots = hour_of_week(timestamps)
    daily = np.mod(slots, 24)
    days = np.floor_divide(timestamps, SECONDS_PER_DAY).astype(np.int64)
    weeks = np.floor_divide(timestamps - _WEEK_ORIGIN, 7 * SECONDS_PER_DAY).astype(np.int64)
    medians = np.full(SLOTS, global_center)
    scales = np.full(SLOTS, global_scale)
    levels = np.full(SLOTS, LEVELS.index("global"), dtype=np.int64)
    counts = np.bincount(slots, minlength=SLOTS).astype(np.int64)
    if _profile_helps(values, daily, 24, days):
        for hour in range(24):
            in_hour = daily == hour
            if in_hour.sum() >= MIN_SLOT_POINTS and np.unique(days[in_hour]).size >= MIN_CYCLES:
                same_hour = np.arange(hour, SLOTS, 24)
                medians[same_hour], scales[same_hour] = robust_center_scale(values[in_hour])
                levels[same_hour] = LEVELS.index("hour_of_day")
    # The week refines what the day (or the whole series) predicts, judged on held-out weeks.
    if _profile_helps(values - medians[slots], slots, SLOTS, weeks):
        for slot in np.flatnonzero(counts >= MIN_SLOT_POINTS):
            in_slot = slots == slot
            if np.unique(weeks[in_slot]).size >= MIN_CYCLES:
                medians[slot], scales[slot] = robust_center_scale(values[in_slot])
                levels[slot] = LEVELS.index("hour_of_week")
    _, typical = robust_center_scale(values - medians[slots])
    scales = np.maximum(scales, scale_floor(global_center, typical))
    return SeasonalBaseline(medians, scales, levels, counts)


def _row_medians(rows: FloatArray, counts: NDArray[np.int64]) -> FloatArray:
    """Return the median of the first ``counts[i]`` values of each row (NaN-padded after)."""
    rows.sort(axis=1)  # in place (the caller's scratch); NaN sorts last
    index = np.arange(rows.shape[0])
    return np.asarray(
        (rows[index, (counts - 1) // 2] + rows[index, counts // 2]) / 2, dtype=np.float64
    )


def recent_drift(
    timestamps: FloatArray, residuals: FloatArray, scales: FloatArray | float, step: float
) -> tuple[FloatArray, FloatArray]:
    """Return, per point, the recent level of the residuals and their recent spread.

    Points are taken in blocks of ``REFRESH_STEPS`` steps; a block's level is the median of
    the residuals (value minus its slot's median) of the ``RECENT_STEPS`` steps before it
    (its own points excluded), and its spread is the robust scale of their distances from
    that level in their slots' ``scales`` (or one scale for all). With less than
    ``MIN_RECENT_SHARE`` of those points the level is 0 and the spread 1 (the trained
    baseline as it is); the spread is never below 1.
    """
    level = np.zeros_like(residuals)
    spread = np.ones_like(residuals)
    if residuals.size == 0:
        return level, spread
    block = np.floor_divide(timestamps, REFRESH_STEPS * step)
    starts = np.flatnonzero(np.concatenate(([True], block[1:] != block[:-1])))
    begin = block[starts] * REFRESH_STEPS * step
    high = np.searchsorted(timestamps, begin, side="left")
    low = np.searchsorted(timestamps, begin - RECENT_STEPS * step, side="left")
    low = np.maximum(low, high - 2 * RECENT_STEPS)  # bunched points: the newest ones
    counts = (high - low).astype(np.int64)
    usable = counts >= MIN_RECENT_SHARE * RECENT_STEPS
    if not usable.any():
        return level, spread
    low, counts = low[usable], counts[usable]
    width = int(counts.max())
    index = np.minimum(low[:, None] + np.arange(width)[None, :], residuals.size - 1)
    rows = residuals[index]
    inside = np.arange(width)[None, :] < counts[:, None]
    if not inside.all():
        rows = np.where(inside, rows, np.nan)
    centers = _row_medians(rows.copy(), counts)
    distances = np.abs(rows - centers[:, None])
    distances /= scales[index] if isinstance(scales, np.ndarray) else scales
    mean = MEAN_AD_TO_SIGMA * np.nansum(distances, axis=1) / counts
    robust = MAD_TO_SIGMA * _row_medians(distances, counts)
    robust = np.where(robust > 0, robust, mean)  # over half the points at the level: the mean
    block_level = np.zeros(starts.size)
    block_spread = np.ones(starts.size)
    block_level[usable] = centers
    block_spread[usable] = np.maximum(robust, 1.0)
    sizes = np.diff(np.append(starts, residuals.size))
    return np.repeat(block_level, sizes), np.repeat(block_spread, sizes)
