"""Where "now" falls in a response, and the averages computed from it.

The service asks for ``past_days=9&forecast_days=2``: Open-Meteo answers whole local days,
the last two of which are today and tomorrow. The response's own calendar is trusted for
the dates (so a recorded response reads the same on any day) and the clock gives the hour
of today that is "now". Hours up to now are history; later hours are the CAMS forecast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from .openmeteo import AirQualityData

DAY_MIN_HOURS = 6  # a day's average needs at least this many hourly values
FULL_DAY_MIN_HOURS = 18  # a day used to train or judge the forecast needs this many
WINDOW_MIN_HOURS = 12  # a 24-hour average needs this many of its 24 hours


def mean(values: Sequence[float | None], min_count: int = 1) -> float | None:
    """Average the values that are present; None when fewer than ``min_count`` are."""
    present = [value for value in values if value is not None]
    if len(present) < max(1, min_count):
        return None
    return sum(present) / len(present)


@dataclasses.dataclass(frozen=True)
class Timeline:
    """A response split into history (up to ``now_index``) and forecast."""

    data: AirQualityData
    now_index: int  # last hour that is history; -1 when the response has none
    today: date
    tomorrow: date

    @property
    def now(self) -> datetime | None:
        """Return the local time of the last history hour."""
        return self.data.times[self.now_index] if self.now_index >= 0 else None

    def observed(self, pollutant: str) -> tuple[float | None, ...]:
        """Return a pollutant's hourly history (up to and including now)."""
        return self.data.series(pollutant)[: self.now_index + 1]

    def available(self, pollutant: str) -> bool:
        """Tell whether the response has any history value for a pollutant."""
        return any(value is not None for value in self.observed(pollutant))

    def window_mean(self, pollutant: str, end: int | None = None, hours: int = 24) -> float | None:
        """Average the ``hours`` hours ending at ``end`` (default: now)."""
        end = self.now_index if end is None else end
        if end < 0:
            return None
        values = self.data.series(pollutant)[max(0, end - hours + 1) : end + 1]
        return mean(values, min(WINDOW_MIN_HOURS, hours))

    def latest(self, pollutant: str) -> float | None:
        """Return the most recent hourly value at or before now."""
        for value in reversed(self.observed(pollutant)):
            if value is not None:
                return value
        return None

    def day_values(self, pollutant: str, day: date) -> list[float | None]:
        """Return the history values of one local day (today: the hours so far)."""
        series = self.observed(pollutant)
        return [v for t, v in zip(self.data.times, series, strict=False) if t.date() == day]

    def daily_mean(self, pollutant: str, day: date, min_hours: int = DAY_MIN_HOURS) -> float | None:
        """Average one day of history."""
        return mean(self.day_values(pollutant, day), min_hours)

    def history_days(self, count: int) -> list[date]:
        """Return the last ``count`` days of history, oldest first, ending today."""
        first = min((t.date() for t in self.data.times), default=self.today)
        days = [self.today - timedelta(days=offset) for offset in range(count - 1, -1, -1)]
        return [day for day in days if day >= first]

    def cams_tomorrow(self, pollutant: str) -> float | None:
        """Average the CAMS forecast for tomorrow, as Open-Meteo sent it."""
        series = self.data.series(pollutant)
        values = [
            v for t, v in zip(self.data.times, series, strict=True) if t.date() == self.tomorrow
        ]
        return mean(values, WINDOW_MIN_HOURS)


def split_timeline(data: AirQualityData, now_utc: datetime) -> Timeline:
    """Place "now" in the response: today is its second-to-last day, the hour from the clock."""
    if not data.times:
        today = (now_utc.astimezone(UTC) + timedelta(seconds=data.utc_offset_seconds)).date()
        return Timeline(data, -1, today, today + timedelta(days=1))
    tomorrow = data.times[-1].date()
    today = tomorrow - timedelta(days=1)
    local_now = now_utc.astimezone(UTC).replace(tzinfo=None)
    hour = (local_now + timedelta(seconds=data.utc_offset_seconds)).hour
    cutoff = datetime.combine(today, datetime.min.time()) + timedelta(hours=hour)
    now_index = -1
    for index, moment in enumerate(data.times):
        if moment <= cutoff:
            now_index = index
    return Timeline(data, now_index, today, tomorrow)
