"""The request bodies of ``POST /train`` and ``POST /detect``, and the limits they must keep.

Pydantic checks the shapes (and names the field of a wrong type, an unknown key or a NaN
value); :mod:`.sources` checks what needs more than one field (start before end, the range,
the number of points) and names the field to change.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class Point(BaseModel):
    """One sample of an inline series: a timestamp (RFC 3339 or Unix seconds) and a value."""

    model_config = ConfigDict(extra="forbid")

    timestamp: datetime
    value: float

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, timestamp: datetime) -> datetime:
        return as_utc(timestamp)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number (NaN and infinities are not measurements)")
        return value


Query = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_LENGTH)]
InlineSeries = dict[Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)], list[Point]]


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
