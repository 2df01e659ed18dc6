"""Reading the fields of MLflow's JSON answers: times, tag and alias lists, run metrics.

MLflow's REST API sends times as milliseconds since the epoch, tags as lists of
``{"key", "value"}`` objects and aliases as ``{"alias", "version"}``. A field of the wrong
type reads as absent rather than failing the whole page: the registry is another team's
system, and one odd tag must not hide every model.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime


def read_time(raw: object) -> datetime | None:
    """Read MLflow's milliseconds since the epoch (a number, or digits as text)."""
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    try:
        return datetime.fromtimestamp(raw / 1000, UTC)
    except (OverflowError, OSError, ValueError):  # beyond the years a datetime holds
        return None


def read_text(raw: object) -> str:
    """Return ``raw`` when it is text, else the empty text."""
    return raw if isinstance(raw, str) else ""


def read_pairs(raw: object, key: str, value: str) -> dict[str, str]:
    """Read a list of ``{key: ..., value: ...}`` objects (tags, aliases) into a mapping."""
    found: dict[str, str] = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get(key), str):
            found[item[key]] = read_text(item.get(value))
    return found


def read_metrics(raw: object) -> dict[str, float]:
    """Read a run's latest metrics; values that are not finite numbers are left out."""
    found: dict[str, float] = {}
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            continue
        value = item.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            continue
        try:
            number = float(value)  # MLflow sends NaN and infinities as text
        except ValueError:
            continue
        if math.isfinite(number):
            found[item["key"]] = number
    return found
