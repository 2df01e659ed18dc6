"""The request bodies of ``POST /train`` and ``POST /detect``, and the limits they must keep.

Pydantic checks the shapes (and names the field of a wrong type, an unknown key or a NaN
value); :mod:`.sources` checks what needs more than one field (start before end, the range,
the number of points) and names the field to change.

An inline point is ``{"timestamp": ..., "value": ...}`` or the pair ``[timestamp, value]``
(a third of the bytes). Points with numeric timestamps and values, the usual case, are
checked as whole arrays; anything else goes through pydantic point by point, so every
refusal still names its point and field (``series.cpu[3].value``, ``series.cpu[3][1]``).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NamedTuple

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    field_validator,
)

MAX_QUERIES = 10
MAX_QUERY_LENGTH = 4000
MAX_SERIES_PER_QUERY = 100
MAX_INLINE_SERIES = 100
MAX_NAME_LENGTH = 200
# Prometheus' own limit per series of a range query; the detector takes no more inline.
MAX_POINTS_PER_SERIES = 11_000
MAX_RANGE = timedelta(days=35)
MIN_STEP_SECONDS = 1.0
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNITS = (7 * 86400, 86400, 3600, 60, 1, 0.001)


def step_seconds(step: float | str) -> float:
    """Read a step as Prometheus does: seconds (``60``, ``"60"``) or a duration (``"5m"``)."""
    if isinstance(step, int | float):
        seconds = float(step)
    else:
        text = step.strip()
        try:
            seconds = float(text)
        except ValueError:
            found = _DURATION.match(text)
            if not text or found is None:
                raise ValueError(
                    "must be seconds (60) or a Prometheus duration (30s, 5m, 1h)"
                ) from None
            seconds = sum(
                int(n) * unit for n, unit in zip(found.groups(), _UNITS, strict=True) if n
            )
    if not math.isfinite(seconds) or seconds < MIN_STEP_SECONDS:
        raise ValueError(f"must be at least {MIN_STEP_SECONDS:g} second")
    return seconds


def as_utc(moment: datetime) -> datetime:
    """Return an aware UTC datetime; a time without an offset is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number (NaN and infinities are not measurements)")
    return value


class Point(NamedTuple):
    """One sample of an inline series: a UTC time and a finite value.

    Sent as ``{"timestamp": ..., "value": ...}`` or ``[timestamp, value]``; the timestamp is
    RFC 3339 or Unix seconds.
    """

    timestamp: Annotated[datetime, AfterValidator(as_utc)]
    value: Annotated[float, AfterValidator(_finite)]


# Pydantic reads a number beyond this as milliseconds, not seconds: such points take its path.
_MAX_UNIX_SECONDS = 2e10
_NUMBERS = (int, float)
_TIMESTAMP_SCHEMA = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
    "description": "RFC 3339, or Unix seconds",
}
_POINTS_SCHEMA = {
    "type": "array",
    "items": {
        "anyOf": [
            {
                "type": "object",
                "properties": {"timestamp": _TIMESTAMP_SCHEMA, "value": {"type": "number"}},
                "required": ["timestamp", "value"],
                "additionalProperties": False,
            },
            {
                "type": "array",
                "prefixItems": [_TIMESTAMP_SCHEMA, {"type": "number"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ]
    },
}


def _numeric_points(raw: Any) -> list[Point] | None:
    """Return the points when every one is a number pair that needs no other check, else None."""
    if not isinstance(raw, list):
        return None
    times: list[object] = []
    values: list[object] = []
    for item in raw:
        if type(item) is list and len(item) == 2:
            times.append(item[0])
            values.append(item[1])
        elif type(item) is dict and len(item) == 2 and "timestamp" in item and "value" in item:
            times.append(item["timestamp"])
            values.append(item["value"])
        else:
            return None
    # bool is an int subclass that pydantic refuses: exact types only.
    if any(type(x) not in _NUMBERS for x in times) or any(type(x) not in _NUMBERS for x in values):
        return None
    seconds = np.asarray(times, dtype=np.float64)
    measured = np.asarray(values, dtype=np.float64)
    if not (np.isfinite(measured).all() and (np.abs(seconds) <= _MAX_UNIX_SECONDS).all()):
        return None  # pydantic names the point (NaN, infinity, milliseconds)
    return [
        Point(datetime.fromtimestamp(moment, UTC), value)
        for moment, value in zip(seconds.tolist(), measured.tolist(), strict=True)
    ]


def _points(raw: Any, handler: ValidatorFunctionWrapHandler) -> list[Point]:
    """Validate a list of points in bulk when it can be, else through pydantic."""
    found = _numeric_points(raw)
    if found is not None:
        return found
    checked: list[Point] = handler(raw)
    return checked


Query = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_LENGTH)]
Points = Annotated[list[Point], WrapValidator(_points), WithJsonSchema(_POINTS_SCHEMA)]
InlineSeries = dict[Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)], Points]


class TrainRequest(BaseModel):
    """``{queries, start, end, step}`` read from Prometheus, or inline ``{series}``."""

    model_config = ConfigDict(extra="forbid")

    queries: list[Query] | None = Field(default=None, max_length=MAX_QUERIES)
    start: datetime | None = None
    end: datetime | None = None
    step: float | str | None = None
    series: InlineSeries | None = None
    false_alarm_rate: float | None = Field(default=None, gt=0, le=0.1)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, moment: datetime | None) -> datetime | None:
        return None if moment is None else as_utc(moment)

    @field_validator("step")
    @classmethod
    def _step(cls, step: float | str | None) -> float | None:
        return None if step is None else step_seconds(step)


class DetectRequest(BaseModel):
    """``{queries, start, end}`` read from Prometheus, or inline ``{series}``."""

    model_config = ConfigDict(extra="forbid")

    queries: list[Query] | None = Field(default=None, max_length=MAX_QUERIES)
    start: datetime | None = None
    end: datetime | None = None
    series: InlineSeries | None = None

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, moment: datetime | None) -> datetime | None:
        return None if moment is None else as_utc(moment)
