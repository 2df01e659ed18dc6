"""From a request to the series to train on or to score, every refusal naming its field.

Queries are read from Prometheus over an explicit ``[start, end]`` at an explicit step
(training) or at the step the model was trained with (detection, starting early enough to
give the first point its full context). Inline series carry their own timestamps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from .detector import MIN_TRAINING_POINTS, trainable
from .errors import ApiError
from .prometheus import (
    PrometheusQueryError,
    PrometheusUnavailableError,
    RangeSource,
    TooManySeriesError,
)
from .registry import Registry
from .schemas import (
    MAX_INLINE_SERIES,
    MAX_POINTS_PER_SERIES,
    MAX_RANGE,
    MAX_SERIES_PER_QUERY,
    DetectRequest,
    Point,
    TrainRequest,
)
from .series import Series, make_series
from .training import Source, TrainedModel, Window


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """The series of one source to train on, and the series left out (too short)."""

    source: Source
    field: str
    series: list[Series]
    skipped: list[Series]
    window: Window


@dataclasses.dataclass(frozen=True)
class DetectionSet:
    """The series of one source to score with its model, from ``since`` on."""

    source: Source
    field: str
    model: TrainedModel
    series: list[Series]
    since: float | None


def _queries_or_series(
    queries: Sequence[str] | None, series: Mapping[str, list[Point]] | None
) -> None:
    if queries is not None and series is not None:
        raise ApiError("series", "give either queries (read from Prometheus) or series, not both")
    if queries is None and series is None:
        raise ApiError("queries", "give queries (read from Prometheus) or inline series")
    if queries is not None:
        if not queries:
            raise ApiError("queries", "give at least one query")
        for index, query in enumerate(queries):
            if query in queries[:index]:
                first = queries.index(query)
                raise ApiError(f"queries[{index}]", f"repeats queries[{first}]")
    if series is not None and not series:
        raise ApiError("series", "give at least one series")
    if series is not None and len(series) > MAX_INLINE_SERIES:
        raise ApiError("series", f"{len(series)} series; at most {MAX_INLINE_SERIES} a request")


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    if start is None:
        raise ApiError("start", "required with queries (an explicit range, never an open one)")
    if end is None:
        raise ApiError("end", "required with queries (an explicit range, never an open one)")
    if not start < end:
        raise ApiError("start", f"must be before end ({start.isoformat()} >= {end.isoformat()})")
    if end - start > MAX_RANGE:
        raise ApiError(
            "start", f"the range is {_days(end - start)}; at most {_days(MAX_RANGE)} is read"
        )
    return start, end


def _days(span: timedelta) -> str:
    return f"{span.total_seconds() / 86400:.4g} days"


def _points(start: datetime, end: datetime, step: float) -> int:
    return int((end - start).total_seconds() // step) + 1


def _inline(name: str, points: list[Point], minimum: int, purpose: str) -> Series:
    field = f"series.{name}"
    if not points:
        raise ApiError(field, f"empty series: {purpose} needs at least {minimum} points")
    if len(points) > MAX_POINTS_PER_SERIES:
        raise ApiError(field, f"{len(points)} points; at most {MAX_POINTS_PER_SERIES:,} a series")
    seen: dict[datetime, int] = {}
    for index, point in enumerate(points):
        if point.timestamp in seen:
            raise ApiError(
                f"{field}[{index}].timestamp",
                f"repeats the timestamp of {field}[{seen[point.timestamp]}]",
            )
        seen[point.timestamp] = index
    if len(points) < minimum:
        raise ApiError(field, f"{len(points)} points; {purpose} needs at least {minimum}")
    return make_series({}, [p.timestamp.timestamp() for p in points], [p.value for p in points])


def _read(
    prometheus: RangeSource, field: str, query: str, start: datetime, end: datetime, step: float
) -> list[Series]:
    try:
        series = prometheus.query_range(query, start, end, step, MAX_SERIES_PER_QUERY)
    except PrometheusQueryError as error:
        raise ApiError(field, f"Prometheus refused the query: {error.message}", 400) from error
    except TooManySeriesError as error:
        raise ApiError(field, str(error)) from error
    except PrometheusUnavailableError as error:
        raise ApiError("prometheus", str(error), 503) from error
    if not series:
        raise ApiError(
            field,
            "returned no series between start and end: an unknown metric or label, or no "
            "data in the range",
        )
    return series


def training_sets(request: TrainRequest, prometheus: RangeSource) -> list[TrainingSet]:
    """Resolve a training request into the series of each source (reads Prometheus)."""
    _queries_or_series(request.queries, request.series)
    if request.series is not None:
        for name in ("start", "end", "step"):
            if getattr(request, name) is not None:
                raise ApiError(name, "applies to queries; inline series carry their own times")
        sets = []
        for name, points in request.series.items():
            series = _inline(name, points, MIN_TRAINING_POINTS, "training")
            window = Window(float(series.timestamps[0]), float(series.timestamps[-1]), None)
            sets.append(TrainingSet(Source("series", name), f"series.{name}", [series], [], window))
        return sets
    queries = request.queries or []  # not None: checked above
    start, end = _range(request.start, request.end)
    if request.step is None:
        raise ApiError("step", "required with queries (seconds, or a duration such as 5m)")
    step = float(request.step)
    count = _points(start, end, step)
    if count > MAX_POINTS_PER_SERIES:
        least = (end - start).total_seconds() / (MAX_POINTS_PER_SERIES - 1)
        raise ApiError(
            "step",
            f"{count:,} points per series; at most {MAX_POINTS_PER_SERIES:,} (a step of at "
            f"least {least:.0f}s over this range)",
        )
    if count < MIN_TRAINING_POINTS:
        raise ApiError(
            "step", f"{count} points per series; training needs at least {MIN_TRAINING_POINTS}"
        )
    window = Window(start.timestamp(), end.timestamp(), step)
    sets = []
    for index, query in enumerate(queries):
        field = f"queries[{index}]"
        enough, short = trainable(_read(prometheus, field, query, start, end, step))
        if not enough:
            longest = max(len(item) for item in short)
            raise ApiError(
                field,
                f"its series have at most {longest} points with values between start and end; "
                f"training needs at least {MIN_TRAINING_POINTS} (a longer range or a smaller step)",
            )
        sets.append(TrainingSet(Source("query", query), field, enough, short, window))
    return sets


def _trained(registry: Registry, source: Source, field: str) -> TrainedModel:
    model = registry.get(source)
    if model is None:
        what = "query" if source.kind == "query" else "series name"
        raise ApiError(
            field,
            f"no model is trained for this {what} on this replica: POST /train first",
            404,
        )
    return model


def detection_sets(
    request: DetectRequest, registry: Registry, prometheus: RangeSource
) -> list[DetectionSet]:
    """Resolve a detection request into the series of each trained source (reads Prometheus)."""
    _queries_or_series(request.queries, request.series)
    if request.series is not None:
        for name in ("start", "end"):
            if getattr(request, name) is not None:
                raise ApiError(name, "applies to queries; inline series carry their own times")
        sets = []
        for name, points in request.series.items():
            field = f"series.{name}"
            model = _trained(registry, Source("series", name), field)
            series = _inline(name, points, 1, "detection")
            sets.append(DetectionSet(model.source, field, model, [series], None))
        return sets
    queries = request.queries or []  # not None: checked above
    start, end = _range(request.start, request.end)
    models = [
        _trained(registry, Source("query", query), f"queries[{index}]")
        for index, query in enumerate(queries)
    ]
    sets = []
    for index, model in enumerate(models):
        field, step = f"queries[{index}]", model.detector.step
        # Read early enough that the first point asked for has its features' full context.
        early = start - timedelta(seconds=model.detector.context_seconds)
        count = _points(early, end, step)
        if count > MAX_POINTS_PER_SERIES:
            raise ApiError(
                "start",
                f"{count:,} points per series at the model's step of {step:g}s (with "
                f"{model.detector.context_seconds:g}s of context); at most "
                f"{MAX_POINTS_PER_SERIES:,}: a shorter range",
            )
        read = _read(prometheus, field, model.source.name, early, end, step)
        sets.append(DetectionSet(model.source, field, model, read, start.timestamp()))
    return sets
