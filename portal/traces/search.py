"""The Traces search: the page's (and the API's) query string.

:func:`parse_query` reads the query parameters (``service``, ``operation``, ``min_ms``,
``max_ms``, ``errors``, ``attr`` as ``key=value``, ``from``, ``to``, ``limit``) into a
:class:`~portal.integrations.trace_source.TraceQuery`, with one message per bad field so
that the page can show each beside its input and the API can answer 422 naming them.
Tempo's form of the same search is :mod:`portal.integrations.traceql`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from portal.integrations.trace_source import MAX_RESULTS, TraceQuery

MAX_TEXT = 256  # service, operation, attribute key
MAX_VALUE = 1024  # attribute value
DEFAULT_LIMIT = 50
FIELDS = ("service", "operation", "min_ms", "max_ms", "errors", "attr", "from", "to", "limit")
_RELATIVE = re.compile(r"^(\d{1,6})\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}
# An attribute name TraceQL reads bare after a dot; any other name is written quoted.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class ParsedQuery:
    """A search read from a query string: the query, and an error per bad field.

    A bad field is left out of ``query`` (its default stays), so a page can still show
    the other fields' results; an API should refuse the request when ``errors`` is set.
    """

    query: TraceQuery
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every field was understood."""
        return not self.errors


def _text(raw: str, name: str, limit: int, errors: dict[str, str]) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if len(value) > limit:
        errors[name] = f"{name} is longer than {limit} characters"
        return None
    if _CONTROL.search(value):
        errors[name] = f"{name} holds a control character"
        return None
    return value


def _milliseconds(raw: str, name: str, errors: dict[str, str]) -> float | None:
    value = raw.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        errors[name] = f"{name} must be a number of milliseconds, not {value[:40]!r}"
        return None
    if not math.isfinite(number) or number < 0:
        errors[name] = f"{name} must be a finite number of milliseconds, 0 or more"
        return None
    return number


def _flag(raw: str, errors: dict[str, str]) -> bool:
    value = raw.strip().lower()
    if not value or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    errors["errors"] = f"errors must be true or false, not {value[:40]!r}"
    return False


def _attribute(raw: str, errors: dict[str, str]) -> tuple[str, str] | None:
    if not raw.strip():
        return None
    key, equals, value = raw.partition("=")
    key = key.strip()
    if not equals or not key:
        errors["attr"] = "attr must be key=value (for example http.route=/api/health)"
        return None
    if len(key) > MAX_TEXT or len(value) > MAX_VALUE:
        errors["attr"] = f"attr's key may hold {MAX_TEXT} characters, its value {MAX_VALUE}"
        return None
    if _CONTROL.search(key) or _CONTROL.search(value):
        errors["attr"] = "attr holds a control character"
        return None
    return key, value


def _time(raw: str, name: str, now: datetime, errors: dict[str, str]) -> datetime | None:
    value = raw.strip()
    if not value:
        return None
    if value.lower() == "now":
        return now
    relative = _RELATIVE.fullmatch(value.lower())
    if relative:
        # "1h" means an hour before now, for either end of the range.
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        errors[name] = (
            f"{name} must be an ISO 8601 time (2024-05-01T12:00:00Z) or an age like 15m, 1h, 2d"
        )
        return None
    # A time without an offset is read as UTC: the server's zone means nothing to the user.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _limit(raw: str, errors: dict[str, str]) -> int:
    value = raw.strip()
    if not value:
        return DEFAULT_LIMIT
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_RESULTS:
        errors["limit"] = f"limit must be a whole number from 1 to {MAX_RESULTS}"
        return DEFAULT_LIMIT
    return int(value)


def parse_query(params: Mapping[str, str], now: datetime | None = None) -> ParsedQuery:
    """Read a search from query parameters; ``now`` anchors relative times (default: now).

    Unknown parameters are ignored (htmx and the page add their own).
    """
    moment = now or datetime.now(UTC)
    errors: dict[str, str] = {}
    got = {name: str(params.get(name) or "") for name in FIELDS}
    min_ms = _milliseconds(got["min_ms"], "min_ms", errors)
    max_ms = _milliseconds(got["max_ms"], "max_ms", errors)
    if min_ms is not None and max_ms is not None and max_ms < min_ms:
        errors["max_ms"] = "max_ms must not be less than min_ms"
        max_ms = None
    start = _time(got["from"], "from", moment, errors)
    end = _time(got["to"], "to", moment, errors)
    if start is not None and end is not None and end <= start:
        errors["to"] = "to must be later than from"
        end = None
    query = TraceQuery(
        service=_text(got["service"], "service", MAX_TEXT, errors),
        operation=_text(got["operation"], "operation", MAX_TEXT, errors),
        min_duration_ms=min_ms,
        max_duration_ms=max_ms,
        errors_only=_flag(got["errors"], errors),
        attribute=_attribute(got["attr"], errors),
        start=start,
        end=end,
        limit=_limit(got["limit"], errors),
    )
    return ParsedQuery(query, {name: errors[name] for name in FIELDS if name in errors})
