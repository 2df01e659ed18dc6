"""Tomorrow's daily average from a model the service trains on its own history.

For every history hour the model sees the 24-hour average ending then, the one a day
earlier and the hour of the day, and learns the next calendar day's average (a ridge
regression, one per pollutant). With fewer than ``MIN_TARGET_DAYS`` complete days to learn
from, it falls back to persistence (tomorrow = the last 24 hours), and says so.

Its error is measured honestly on the last complete days: for each, a model trained only on
what came before predicts it from the evening before (walk-forward), beside persistence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
from sklearn.linear_model import Ridge

from .timeline import FULL_DAY_MIN_HOURS, Timeline, mean

MIN_TARGET_DAYS = 3
MIN_SAMPLES = 36
BACKTEST_DAYS = 3
RIDGE_ALPHA = 1.0
FEATURES = ("mean_last_24h", "mean_24h_a_day_earlier", "hour_of_day")


@dataclasses.dataclass(frozen=True)
class BacktestDay:
    """One past day: what the model would have said the evening before, and what came."""

    day: date
    predicted: float
    persistence: float
    actual: float


@dataclasses.dataclass(frozen=True)
class Skill:
    """Mean absolute errors (µg/m³) over the backtest days."""

    days: tuple[BacktestDay, ...] = ()

    @property
    def mae(self) -> float | None:
        """Return the model's mean absolute error."""
        return mean([abs(d.predicted - d.actual) for d in self.days])

    @property
    def persistence_mae(self) -> float | None:
        """Return persistence's mean absolute error, the baseline to beat."""
        return mean([abs(d.persistence - d.actual) for d in self.days])

    def as_dict(self) -> dict[str, object]:
        """Describe the skill for the model card and the API."""
        return {
            "mae": self.mae,
            "persistence_mae": self.persistence_mae,
            "days": [
                {
                    "date": d.day.isoformat(),
                    "predicted": d.predicted,
                    "persistence": d.persistence,
                    "actual": d.actual,
                }
                for d in self.days
            ],
        }


@dataclasses.dataclass(frozen=True)
class Forecaster:
    """The day-ahead model of one pollutant."""

    pollutant: str
    method: str  # "ridge" or "persistence"
    model: Ridge | None
    samples: int
    skill: Skill = Skill()

    def predict(self, timeline: Timeline, index: int | None = None) -> float | None:
        """Predict the next day's average from the history up to ``index`` (default: now)."""
        index = timeline.now_index if index is None else index
        row = features_at(timeline, self.pollutant, index)
        if row is None:
            return timeline.window_mean(self.pollutant, index)
        if self.model is None:
            return row[0]
        return max(0.0, float(self.model.predict(np.array([row]))[0]))


def features_at(timeline: Timeline, pollutant: str, index: int) -> list[float] | None:
    """Return the model's inputs at one history hour, or None when data is missing."""
    if index < 0:
        return None
    now = timeline.window_mean(pollutant, index)
    before = timeline.window_mean(pollutant, index - 24) if index >= 24 else None
    if now is None or before is None:
        return None
    return [now, before, timeline.data.times[index].hour / 23]


def _samples(
    timeline: Timeline, pollutant: str, before: date
) -> tuple[list[list[float]], list[float], set[date]]:
    """Return training rows whose target day is complete history earlier than ``before``."""
    targets: dict[date, float | None] = {}
    rows: list[list[float]] = []
    ys: list[float] = []
    for index in range(timeline.now_index + 1):
        target_day = timeline.data.times[index].date() + timedelta(days=1)
        if target_day >= before:
            continue
        if target_day not in targets:
            targets[target_day] = timeline.daily_mean(pollutant, target_day, FULL_DAY_MIN_HOURS)
        target = targets[target_day]
        row = features_at(timeline, pollutant, index) if target is not None else None
        if row is not None and target is not None:
            rows.append(row)
            ys.append(target)
    used = {day for day, value in targets.items() if value is not None}
    return rows, ys, used


def _fit(timeline: Timeline, pollutant: str, before: date) -> Forecaster:
    rows, ys, days = _samples(timeline, pollutant, before)
    if len(days) < MIN_TARGET_DAYS or len(rows) < MIN_SAMPLES:
        return Forecaster(pollutant, "persistence", None, len(rows))
    model = Ridge(alpha=RIDGE_ALPHA).fit(np.array(rows), np.array(ys))
    return Forecaster(pollutant, "ridge", model, len(rows))


def _evening_before(timeline: Timeline, day: date) -> int | None:
    previous = day - timedelta(days=1)
    indexes = [
        i for i in range(timeline.now_index + 1) if timeline.data.times[i].date() == previous
    ]
    return indexes[-1] if indexes else None


def backtest(timeline: Timeline, pollutant: str, days: int = BACKTEST_DAYS) -> Skill:
    """Walk forward over the last complete days and compare predictions with what came."""
    results: list[BacktestDay] = []
    for offset in range(days, 0, -1):
        day = timeline.today - timedelta(days=offset)
        actual = timeline.daily_mean(pollutant, day, FULL_DAY_MIN_HOURS)
        index = _evening_before(timeline, day)
        if actual is None or index is None:
            continue
        persistence = timeline.window_mean(pollutant, index)
        predicted = _fit(timeline, pollutant, day).predict(timeline, index)
        if persistence is None or predicted is None:
            continue
        results.append(BacktestDay(day, predicted, persistence, actual))
    return Skill(tuple(results))


def train_forecaster(timeline: Timeline, pollutant: str) -> Forecaster:
    """Train on every complete day of history and measure the skill on the last days."""
    fitted = _fit(timeline, pollutant, timeline.today)
    return dataclasses.replace(fitted, skill=backtest(timeline, pollutant))


def train_forecasters(timeline: Timeline, pollutants: Sequence[str]) -> dict[str, Forecaster]:
    """Train one forecaster per pollutant that has history."""
    return {
        name: train_forecaster(timeline, name) for name in pollutants if timeline.available(name)
    }
