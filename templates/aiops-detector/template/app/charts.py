"""What the page draws: for each model, its series' values and scores over a range, and the windows.

A query's points are read from Prometheus over the range (plus the context its features
need, at the model's step) and scored with its model; an inline series' are the points
``POST /detect`` last scored for it (:mod:`.recent`). Scoring is bounded per page
(:data:`MAX_PAGE_POINTS`): what is beyond the budget is said, never silently left out, and
so is a Prometheus that is down or refuses the query; nothing is drawn from a guess.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from .detector import Scores, detection_of
from .prometheus import PrometheusQueryError, PrometheusUnavailableError, TooManySeriesError
from .runtime import Runtime
from .schemas import MAX_POINTS_PER_SERIES, MAX_SERIES_PER_QUERY
from .series import series_key
from .training import TrainedModel
from .windows import CRITICAL_SCORE, AnomalyWindow

MAX_PAGE_POINTS = 150_000  # scored per page view: about two seconds of scoring at worst
MAX_CHART_POINTS = 1500  # drawn per chart; a longer series keeps each stretch's top score


@dataclasses.dataclass(frozen=True)
class WindowRow:
    """One anomaly window of one series, as the table lists it."""

    series: str
    window: AnomalyWindow


@dataclasses.dataclass(frozen=True, eq=False)
class SeriesChart:
    """One series over the range: its values, its scores and its windows."""

    ident: str
    labels: str
    scores: Scores
    windows: list[AnomalyWindow]

    @property
    def peak(self) -> float | None:
        """Return the highest score in the range (None: no point in it)."""
        combined = self.scores.combined
        return float(combined.max()) if combined.size else None

    def uplot(self) -> dict[str, Any]:
        """Return the chart's data for ``static/chart.js``: times, values, scores, windows."""
        kept = _drawn(self.scores.combined, MAX_CHART_POINTS)
        return {
            "x": [float(t) for t in self.scores.timestamps[kept]],
            "values": [_number(v) for v in self.scores.values[kept]],
            "scores": [_number(v) for v in self.scores.combined[kept]],
            "windows": [[w.start, w.end, w.severity] for w in self.windows],
            "critical": CRITICAL_SCORE,
        }


@dataclasses.dataclass(frozen=True)
class SourceView:
    """A model's part of the page: charts of its most anomalous series, every window, problems."""

    model: TrainedModel
    charts: list[SeriesChart]
    windows: list[WindowRow]
    scored: int = 0
    over_budget: int = 0
    untrained: int = 0
    problem: str | None = None
    scored_at: datetime | None = None  # inline series: when their points were sent

    @property
    def kind(self) -> str:
        """Return ``query`` or ``series``, the page's parameter naming this source."""
        return self.model.source.kind

    @property
    def name(self) -> str:
        """Return the query or the inline series' name."""
        return self.model.source.name


def _number(value: float) -> float | None:
    return round(float(value), 4) if math.isfinite(value) else None


def _drawn(scores: np.ndarray, limit: int) -> np.ndarray:
    """Return the indices drawn: all, or the top score of each of ``limit`` equal stretches."""
    if scores.size <= limit:
        return np.arange(scores.size)
    bounds = np.linspace(0, scores.size, limit + 1).astype(int)
    return np.array([lo + int(np.argmax(scores[lo:hi])) for lo, hi in itertools.pairwise(bounds)])


class Budget:
    """The points a page view may still score."""

    def __init__(self, points: int = MAX_PAGE_POINTS) -> None:
        self.left = points

    def take(self, points: int) -> bool:
        """Spend ``points`` if they are left; say whether they were."""
        if points > self.left:
            self.left = 0  # later series would skew the view: stop here
            return False
        self.left -= points
        return True


def _view(
    model: TrainedModel,
    scored: Sequence[tuple[str, Scores]],
    charts: int,
    **facts: Any,
) -> SourceView:
    gap = model.detector.gap_seconds
    drawn: list[SeriesChart] = []
    rows: list[WindowRow] = []
    for index, (labels, scores) in enumerate(scored):
        found = detection_of(scores, {}, gap).windows
        rows += [WindowRow(labels, window) for window in found]
        drawn.append(SeriesChart(f"{model.source.ident}-{index}", labels, scores, found))
    # The most anomalous series first: what a reader came to see.
    drawn.sort(key=lambda chart: -(chart.peak or 0.0))
    rows.sort(key=lambda row: row.window.start, reverse=True)
    return SourceView(model, drawn[:charts], rows, scored=len(scored), **facts)


def query_view(
    runtime: Runtime,
    model: TrainedModel,
    start: datetime,
    end: datetime,
    charts: int,
    budget: Budget,
) -> SourceView:
    """Read a query over ``[start, end]`` (plus its features' context) and score it."""
    detector = model.detector
    step = detector.step
    first = math.floor((start.timestamp() - detector.context_seconds) / step) * step
    last = math.floor(end.timestamp() / step) * step
    points = int((last - first) // step) + 1
    if points > MAX_POINTS_PER_SERIES:
        return SourceView(
            model,
            [],
            [],
            problem=f"the range holds {points:,} points per series at this model's step of "
            f"{step:g} s (with {detector.context_seconds:g} s of context); at most "
            f"{MAX_POINTS_PER_SERIES:,} are read: choose a shorter range",
        )
    try:
        series = runtime.prometheus.query_range(
            model.source.name,
            datetime.fromtimestamp(first, start.tzinfo),
            datetime.fromtimestamp(last, start.tzinfo),
            step,
            MAX_SERIES_PER_QUERY,
        )
    except PrometheusQueryError as error:
        return SourceView(model, [], [], problem=f"Prometheus refused the query: {error.message}")
    except (PrometheusUnavailableError, TooManySeriesError) as error:
        return SourceView(model, [], [], problem=str(error))
    known = [item for item in series if detector.profile(item) is not None]
    scored, over = [], 0
    for item in known:
        if not budget.take(len(item)):
            over += 1
            continue
        scores = detector.scores(item).between(start.timestamp(), end.timestamp())
        scored.append((item.key, scores))
    problem = None
    if not series:
        problem = "Prometheus returned no series in this range (no data, or the metric is gone)"
    return _view(
        model, scored, charts, over_budget=over, untrained=len(series) - len(known), problem=problem
    )


def series_view(
    runtime: Runtime,
    model: TrainedModel,
    start: datetime,
    end: datetime,
    charts: int,
    budget: Budget,
) -> SourceView:
    """Show the points ``POST /detect`` last scored for an inline series, within the range."""
    recent = runtime.recent.get(model.source.name)
    if recent is None:
        return SourceView(
            model,
            [],
            [],
            problem="no points scored since this replica started: POST /detect with "
            f"series.{model.source.name} to see them here",
        )
    scores = recent.scores.between(start.timestamp(), end.timestamp())
    if not budget.take(scores.timestamps.size):
        return SourceView(model, [], [], over_budget=1, scored_at=recent.at)
    problem = None
    if not scores.timestamps.size:
        problem = "none of the points last sent to POST /detect are in this range"
    scored = [(series_key(recent.labels), scores)] if scores.timestamps.size else []
    return _view(model, scored, charts, problem=problem, scored_at=recent.at)


def source_views(
    runtime: Runtime,
    models: Sequence[TrainedModel],
    start: datetime,
    end: datetime,
    charts: int,
    budget_points: int = MAX_PAGE_POINTS,
) -> list[SourceView]:
    """Return each model's view over the range (blocking: reads Prometheus, scores)."""
    budget = Budget(budget_points)
    views = []
    for model in models:
        read = query_view if model.source.kind == "query" else series_view
        views.append(read(runtime, model, start, end, charts, budget))
    return views
