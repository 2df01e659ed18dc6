"""The small pieces of PromQL text Sloth writes: durations, Go-formatted floats, label filters.

Sloth is written in Go, so its rules print floats with ``%g`` (shortest round-trip digits),
durations with Prometheus' ``model.Duration`` (``72h`` prints as ``3d``, ``28d`` as ``4w``)
and label values with Go's ``%q``. Reproducing those byte for byte is what makes our rules
interchangeable with Sloth's (same series names, same dashboards).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")

_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?\Z"
)
_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000}
_UNITS_MS = (
    _MS["y"],
    _MS["w"],
    _MS["d"],
    _MS["h"],
    60_000,
    1_000,
    1,
)
_HOUR_MS = 3_600_000


def parse_duration(text: str) -> int:
    """Parse a Prometheus duration (``5m``, ``1h30m``, ``4w``) into milliseconds.

    Raises ValueError for anything Prometheus would reject (``1.5h``, ``30 d``, ``""``).
    """
    if text == "0":
        return 0
    match = _DURATION.match(text) if isinstance(text, str) and text else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration (use e.g. 5m, 6h, 30d)")
    parts = zip(match.groups(), _UNITS_MS, strict=True)
    return sum(int(part) * unit for part, unit in parts if part)


@lru_cache(maxsize=1024)
def format_duration(ms: int) -> str:
    """Print milliseconds the way Prometheus' ``model.Duration.String`` does.

    Years and weeks are used only when they divide exactly (``28d`` -> ``4w``, ``30d`` stays
    ``30d``); smaller units are combined (``36h`` -> ``1d12h``).
    """
    if ms == 0:
        return "0s"
    out: list[str] = []
    for unit, size, exact in (
        ("y", _MS["y"], True),
        ("w", _MS["w"], True),
        ("d", _MS["d"], False),
        ("h", _MS["h"], False),
        ("m", 60_000, False),
        ("s", 1_000, False),
        ("ms", 1, False),
    ):
        if exact and ms % size:
            continue
        count, ms = divmod(ms, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def duration_hours(ms: int) -> float:
    """Return Go's ``time.Duration.Hours()`` of a duration in milliseconds (same rounding)."""
    hours, rest = divmod(ms, _HOUR_MS)
    return float(hours) + float(rest * 1_000_000) / (60 * 60 * 1e9)


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of ``abs(value)`` and the decimal point position."""
    text = repr(abs(value))
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + (int(exponent) if exponent else 0)
    point -= len(whole + fraction) - len((whole + fraction).lstrip("0"))
    digits = digits.rstrip("0")
    return digits or "0", point


def go_float(value: float) -> str:
    """Format a float like Go's ``fmt.Sprintf("%g", value)``.

    Shortest round-trip digits (Python's ``repr`` finds the same ones), exponent form when
    the exponent is below -4 or at least 6: ``0.9990000000000001``, ``30``, ``1e-05``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return f"{sign}0"
    digits, point = _shortest_digits(value)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + _fixed(digits, point)


def go_float_fixed(value: float) -> str:
    """Format a float like Go's ``strconv.FormatFloat(value, 'f', -1, 64)`` (no exponent)."""
    if not math.isfinite(value):
        return go_float(value)
    sign = "-" if value < 0 else ""
    if value == 0:
        return "0"
    digits, point = _shortest_digits(value)
    return sign + _fixed(digits, point)


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}
_NEEDS_GO_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]')


def _go_escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _GO_ESCAPES:
        return _GO_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def go_quote(value: str) -> str:
    """Quote a string like Go's ``%q`` (a valid PromQL string literal)."""
    return '"' + _NEEDS_GO_ESCAPE.sub(_go_escape, value) + '"'


def label_filter(labels: Mapping[str, str]) -> str:
    """Render ``{a="1", b="2"}`` (sorted, Go-quoted) like Prometheus' ``LabelSet.String``."""
    return "{" + ", ".join(f"{key}={go_quote(labels[key])}" for key in sorted(labels)) + "}"


def series_selector(name: str, labels: Mapping[str, str]) -> str:
    """Render a series selector for promtool's ``input_series`` and ``exp_samples``."""
    return name + label_filter(labels)
