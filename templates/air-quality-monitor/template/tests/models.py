"""Timelines for the model tests, from the synthetic series and the recorded responses."""

from __future__ import annotations

from typing import Any

from app.openmeteo import parse_response
from app.timeline import Timeline, split_timeline

from .conftest import NOW, load_fixture
from .series import synthetic_response

POLLUTANTS = ("pm2_5", "pm10", "nitrogen_dioxide")


def timeline_of(payload: Any, pollutants: tuple[str, ...] = POLLUTANTS) -> Timeline:
    """Parse a response and place "now" in it (10:00 local for the synthetic series)."""
    return split_timeline(parse_response(payload, pollutants), NOW)


def synthetic_timeline(**options: Any) -> Timeline:
    """Return the 11-day synthetic timeline (see ``series.py``)."""
    return timeline_of(synthetic_response(**options))


def recorded_timeline(name: str) -> Timeline:
    """Return the timeline of a recorded response."""
    return timeline_of(load_fixture(name))
