"""How SLO numbers and files read on the pages: percentages, burn rates, durations, YAML.

The formatting functions are handed to the templates (``fmt`` in the page context) so
every page prints the same number the same way. YAML is highlighted by Pygments, which
escapes every character of the text it wraps (spec files are untrusted input).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import YamlLexer

NO_DATA = "\u2013"  # an en dash: no value
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_WORDS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def percent(ratio: float | None, digits: int = 2) -> str:
    """Print a ratio as a percentage with up to ``digits`` decimals (``0.99912`` -> ``99.91%``)."""
    if ratio is None or not math.isfinite(ratio):
        return NO_DATA
    text = f"{ratio * 100:.{digits}f}".rstrip("0").rstrip(".")
    return f"{'0' if text == '-0' else text}%"


def objective(value: float | None) -> str:
    """Print an objective in percent as written in specs (``99.9%``)."""
    return NO_DATA if value is None else f"{value:g}%"


def burn(value: float | None) -> str:
    """Print a burn rate with a precision that fits its size (``0.02x``, ``6.1x``, ``120x``)."""
    if value is None or not math.isfinite(value):
        return NO_DATA
    if value >= 100:
        return f"{value:.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"


def duration(seconds: float | None) -> str:
    """Print a duration in the two largest units (``2d 4h``, ``35m``); "never" for infinity."""
    if seconds is None:
        return NO_DATA
    if not math.isfinite(seconds):
        return "never"
    remaining, parts = round(seconds), list[str]()
    for unit, size in _UNITS:
        if remaining >= size or (unit == "s" and not parts):
            count, remaining = divmod(remaining, size)
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    return " ".join(parts)


def span(seconds: float | None) -> str:
    """Print a length of time in words, two largest units (``15 minutes``, ``3 days 4 hours``).

    Rounded down: a coverage of 2 hours 59 minutes never reads as 3 hours.
    """
    if seconds is None or not math.isfinite(seconds):
        return NO_DATA
    remaining, parts = max(int(seconds), 0), list[str]()
    if remaining < 60:
        return "less than a minute"
    for unit, size in _WORDS[:-1]:  # minutes at the finest: seconds would only flicker
        if remaining >= size:
            count, remaining = divmod(remaining, size)
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
        elif parts:
            break  # "1 day 5 minutes" would skip a unit: stop at the gap instead
        if len(parts) == 2:
            break
    return " ".join(parts)


def window_name(period_ms: int | None) -> str:
    """Name an SLO period as an adjective: ``30-day``, ``12-hour`` (``an unknown`` without one)."""
    if not period_ms:
        return "an unknown"
    seconds = period_ms // 1000
    for unit, size in _WORDS:
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}-{unit}"
    return f"{seconds}-second"


def number(value: float | None) -> str:
    """Print a raw number for ``data-value`` attributes (empty when missing)."""
    return "" if value is None or not math.isfinite(value) else repr(float(value))


def highlight_yaml(text: str) -> Markup:
    """Highlight YAML with line numbers; the styles are the review pages' ``diff.css``."""
    formatter = HtmlFormatter(cssclass="highlight", linenos="table", wrapcode=True)
    # Safe: Pygments escapes every character of the code it wraps in its markup.
    return Markup(highlight(text, YamlLexer(stripnl=False), formatter))  # noqa: S704


FORMATS = SimpleNamespace(
    percent=percent,
    objective=objective,
    burn=burn,
    duration=duration,
    span=span,
    window_name=window_name,
    number=number,
)
"""What the templates call as ``fmt.percent(...)`` and so on."""
