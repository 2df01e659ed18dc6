"""How much of an SLO's period Prometheus has data for, and whether that is enough for a verdict.

Sloth's period SLI (``slo:sli_error:ratio_rate30d``) and so the budget remaining are the
average of the shortest SLI window's samples over the period: on a fresh install a value
labelled "30d" is the average of the few minutes recorded so far. The *coverage* of an SLO
is the time since its first recorded sample, capped at the period; the pages print it
next to every period value ("15 minutes of the 30-day window").

**The rule:** a verdict about the period ("meets the objective", "budget exhausted") needs
a coverage of at least the SLO's longest alert window (3 days for 30 days: the slow
ticket condition, 6h and 3d at 1x). That is the most history any alert weighs; with less,
an early fast burn or a quiet first hour would decide the month. Below it the pages say
"not enough data yet (N of the window)". Alerts are shown whatever the coverage: they are
Prometheus' own state. An SLO whose alert windows are unknown (a period without windows
data) needs a tenth of its period.

**The query** is one instant query for every SLO (:func:`coverage_query`): the earliest
timestamp of ``slo:current_burn_rate:ratio`` (one series per SLO, recorded from the same
shortest window), looked for in three passes whose results are kept apart by a label and
then reduced with ``min``: hourly over the whole range (cheap: 720 steps for 30 days),
every minute over the last day (precise while an SLO is young) and the latest sample
(series younger than the last whole minute, which an aligned subquery step misses). A
subquery step sees the latest sample before it, so the first timestamp is found to within
one step (a minute for a young SLO, an hour for an old one), always on the short side.
``time()`` minus it is computed by Prometheus, so the portal's clock does not matter.
Gaps (Prometheus down for a day) are not subtracted: coverage counts from the first sample.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.slo.compiler.promql import format_duration
from portal.slo.compiler.windows import AlertWindows
from portal.slo.present import span, window_name

COVERAGE_METRIC = "slo:current_burn_rate:ratio"
FINE_RANGE_MS = 86_400_000  # the last day, minute by minute
FINE_STEP = "1m"
COARSE_STEP = "1h"
UNKNOWN_WINDOWS_FRACTION = 0.1
DEFAULT_RANGE_MS = 30 * 86_400_000


def coverage_query(range_ms: int = DEFAULT_RANGE_MS) -> str:
    """Write the query of every SLO's coverage in seconds (``time()`` minus its first sample).

    ``range_ms`` is the longest period of the SLOs shown: older samples change nothing.
    """
    series = f'timestamp({COVERAGE_METRIC}{{sloth_id!=""}})'
    coarse = f"min_over_time({series}[{format_duration(range_ms)}:{COARSE_STEP}])"
    fine_ms = min(range_ms, FINE_RANGE_MS)
    fine = f"min_over_time({series}[{format_duration(fine_ms)}:{FINE_STEP}])"
    # Distinct label sets, or "or" would keep only the first pass of each SLO.
    return (
        "time() - min by (sloth_id) ("
        f'label_replace({coarse}, "coverage_pass", "coarse", "", "")'
        f' or label_replace({fine}, "coverage_pass", "fine", "", "")'
        f" or {series})"
    )


def minimum_ms(windows: AlertWindows | None, period_ms: int | None) -> int | None:
    """Return the coverage a verdict about the period needs (the longest alert window)."""
    if windows is not None:
        pairs = (windows.page_quick, windows.page_slow, windows.ticket_quick, windows.ticket_slow)
        return max(max(pair.short_ms, pair.long_ms) for pair in pairs)
    if period_ms:
        return round(period_ms * UNKNOWN_WINDOWS_FRACTION)
    return None


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of the period has data (``seconds`` None: unknown) and how much a verdict needs."""

    seconds: float | None
    period_ms: int | None
    minimum_ms: int | None

    @property
    def known(self) -> bool:
        """True when Prometheus told the first sample's time."""
        return self.seconds is not None

    @property
    def covered_seconds(self) -> float | None:
        """The coverage capped at the period (a 60-day-old series covers a 30-day window)."""
        if self.seconds is None:
            return None
        seconds = max(self.seconds, 0.0)
        return min(seconds, self.period_ms / 1000) if self.period_ms else seconds

    @property
    def full(self) -> bool:
        """True when the data spans the whole period."""
        covered = self.covered_seconds
        if covered is None or not self.period_ms:
            return False
        return covered * 1000 >= self.period_ms

    @property
    def enough(self) -> bool:
        """True when a verdict about the period may be given (see the module's rule)."""
        covered = self.covered_seconds
        if covered is None or self.minimum_ms is None:
            return False
        return covered * 1000 >= self.minimum_ms

    @property
    def text(self) -> str:
        """Say it for people: ``15 minutes of the 30-day window``."""
        if self.seconds is None:
            return "coverage unknown"
        window = f"the {window_name(self.period_ms)} window" if self.period_ms else "the period"
        if self.full:
            return f"the whole {window_name(self.period_ms)} window"
        return f"{span(self.covered_seconds)} of {window}"

    @property
    def needed(self) -> str:
        """Say how much a verdict needs: ``3 days``."""
        return span(self.minimum_ms / 1000) if self.minimum_ms else "an unknown time"


def coverage_of(
    seconds: float | None, windows: AlertWindows | None, period_ms: int | None
) -> Coverage:
    """Combine what Prometheus says with the SLO's windows into a :class:`Coverage`."""
    return Coverage(seconds, period_ms, minimum_ms(windows, period_ms))
