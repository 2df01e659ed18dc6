"""Synthetic Open-Meteo responses for the model tests (not real data: built here, on purpose).

A daily cycle (morning and evening peaks) on a slowly moving level, with a little noise,
in the exact envelope of a ``past_days=9&forecast_days=2`` request (264 hours).
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any


def synthetic_response(
    *,
    days: int = 11,
    base: dict[str, float] | None = None,
    wave_day: int | None = None,
    wave_factor: float = 4.0,
    seed: int = 7,
) -> dict[str, Any]:
    """Return a response for ``days`` days; ``wave_day`` multiplies that day by ``wave_factor``."""
    base = base or {"pm2_5": 9.0, "pm10": 16.0, "nitrogen_dioxide": 18.0}
    rng = random.Random(seed)
    start = datetime(2026, 10, 1)
    times = [start + timedelta(hours=h) for h in range(24 * days)]
    hourly: dict[str, list[Any]] = {"time": [t.strftime("%Y-%m-%dT%H:%M") for t in times]}
    for name, level in base.items():
        values = []
        for t in times:
            day = (t - start).days
            trend = 1 + 0.25 * math.sin(day / 2.0)
            cycle = 1 + 0.35 * math.sin((t.hour - 7) / 24 * 2 * math.pi) ** 2
            wave = wave_factor if wave_day is not None and day == wave_day else 1.0
            values.append(round(level * trend * cycle * wave * rng.uniform(0.9, 1.1), 1))
        hourly[name] = values
    return {
        "latitude": 48.14,
        "longitude": 11.58,
        "generationtime_ms": 0.1,
        "utc_offset_seconds": 3600,
        "timezone": "Europe/Berlin",
        "timezone_abbreviation": "GMT+1",
        "elevation": 524.0,
        "hourly_units": {"time": "iso8601", **{name: "μg/m³" for name in base}},
        "hourly": hourly,
    }
