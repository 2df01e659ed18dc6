"""Alert windows for any SLO period, scaled from the 28-day ones as Pyrra does.

Pyrra (https://github.com/pyrra-dev/pyrra, ``slo/rules.go``, function ``Windows``, at
commit ``1ba95afbf90b2311cb9332b1633cf09218b7de9f``) derives its four multiwindow,
multi-burn-rate alerts from the SLO window alone: every short and long window is a fixed
fraction of the period (its 28-day values 5m/1h, 30m/6h, 2h/1d and 6h/4d, scaled to the
period), rounded to the minute (Go's ``Duration.Round``: halves away from zero), with the
burn-rate factors 14, 7, 2 and 1. The SRE workbook scales its table the same way: the
windows grow with the period, the factors stay.

These windows serve every period that no AlertWindows file covers (a Pyrra ``window: 2w``,
an OpenSLO ``duration: 7d``); the 30d and 28d files (Sloth's) keep precedence, so those
rules stay byte-equal to Sloth's.
"""

from __future__ import annotations

from portal.slo.compiler.promql import format_duration, parse_duration
from portal.slo.compiler.windows import AlertWindows, Window, WindowsCatalog

_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
REFERENCE_PERIOD_MS = 28 * _DAY

# (short window, long window) at the 28-day reference period, and the burn-rate factor:
# page quick, page slow (Pyrra's "critical"), ticket quick, ticket slow ("warning").
PYRRA_TABLE: tuple[tuple[int, int, float], ...] = (
    (5 * _MINUTE, 1 * _HOUR, 14),
    (30 * _MINUTE, 6 * _HOUR, 7),
    (2 * _HOUR, 1 * _DAY, 2),
    (6 * _HOUR, 4 * _DAY, 1),
)
SOURCE = "scaled from the 28-day windows as Pyrra does"


def scale(period_ms: int, reference_ms: int) -> int:
    """Scale a 28-day window to ``period_ms``, rounded to the minute (halves away from zero)."""
    numerator = period_ms * reference_ms
    denominator = REFERENCE_PERIOD_MS * _MINUTE
    return (2 * numerator + denominator) // (2 * denominator) * _MINUTE


def shortest_period_ms() -> int:
    """Return the shortest period whose every scaled window is at least a minute long."""
    shortest = min(short for short, _, _ in PYRRA_TABLE)
    # A window rounds up to 1m from half a minute on.
    return -(-REFERENCE_PERIOD_MS * _MINUTE // (2 * shortest))


def scaled_windows(period_ms: int) -> AlertWindows:
    """Compute Pyrra's windows for a period; raise ValueError naming why it cannot be done."""
    if period_ms < shortest_period_ms():
        raise ValueError(
            f"the SLO period {format_duration(period_ms)} is too short for multiwindow "
            f"alerts: scaled as Pyrra does, its shortest alert window would round to 0m "
            f"(the shortest period is {format_duration(shortest_period_ms())})"
        )
    windows = []
    for short_28d, long_28d, factor in PYRRA_TABLE:
        short, long = scale(period_ms, short_28d), scale(period_ms, long_28d)
        # The share of the budget this alert spends, for people (the rules use the factor).
        percent = factor * long / period_ms * 100
        windows.append(Window(percent, short, long, factor))
    page_quick, page_slow, ticket_quick, ticket_slow = windows
    return AlertWindows(
        period_ms=period_ms,
        page_quick=page_quick,
        page_slow=page_slow,
        ticket_quick=ticket_quick,
        ticket_slow=ticket_slow,
        source=SOURCE,
    )


def windows_for_period(catalog: WindowsCatalog, period_ms: int) -> AlertWindows:
    """Return the windows file of a period when there is one, else Pyrra's scaled windows.

    Raise ValueError when neither exists (a period too short to scale).
    """
    found = catalog.get(period_ms)
    return found if found is not None else scaled_windows(period_ms)


def resolve_period(catalog: WindowsCatalog, period: str) -> AlertWindows:
    """Return the windows of a period written as a duration; ValueError says what is wrong."""
    period_ms = parse_duration(period)
    try:
        return windows_for_period(catalog, period_ms)
    except ValueError as error:
        raise ValueError(f"{error}; add an AlertWindows file for it") from None
