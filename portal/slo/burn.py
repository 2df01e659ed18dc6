"""Live SLO state from Prometheus in a fixed number of queries, joined by ``sloth_id``.

However many SLOs there are, a snapshot is the seven queries of :func:`snapshot_queries`:
Sloth's info metric, the current burn rate, the budget remaining, the period, the SLI
error ratios of the alert windows (one selector over all of them), the alerts and the
data coverage (:mod:`portal.slo.coverage`). The answers are joined in Python into one
:class:`LiveSLO` per ``sloth_id``. Burn rates per window are the SLI error ratio over the
error budget; a window is coloured by the alert conditions it takes part in that are met
(both windows over the factor: 14.4, 6, 3 and 1 for 30 days; derived from the
AlertWindows data for other periods).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from portal.integrations.prometheus import (
    Prometheus,
    PrometheusError,
    PrometheusQueryError,
    Sample,
)
from portal.slo.compiler.promql import format_duration, go_quote, parse_duration
from portal.slo.compiler.windows import AlertWindows, Window
from portal.slo.coverage import DEFAULT_RANGE_MS, coverage_query

SLI_PREFIX = "slo:sli_error:ratio_rate"
DEFAULT_WINDOWS = ("5m", "1h", "6h", "3d")
"""The overview's burn windows for the built-in periods (see :func:`overview_windows`)."""
DEFAULT_ALERT_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
"""Every window of the built-in periods' alert conditions (see :func:`alert_windows`)."""


def sli_query(windows: Iterable[str]) -> str:
    """Select the SLI error ratios of the given windows, for every SLO, in one query."""
    names = "|".join(sorted(set(windows)))
    return f'max by (sloth_id, sloth_window) ({{__name__=~"{SLI_PREFIX}({names})"}})'


def snapshot_queries(
    windows: Iterable[str] = DEFAULT_ALERT_WINDOWS, coverage_range_ms: int = DEFAULT_RANGE_MS
) -> dict[str, str]:
    """Write the overview's queries: their number never depends on the number of SLOs.

    Each keeps only the labels the join needs (``max by``), and the SLI ratios only of
    the windows asked for (the alert windows, not the period's): the SLOs' own labels and
    the other windows would multiply the answer's size for nothing.
    """
    return {
        "info": "max by (sloth_id, sloth_service, sloth_slo, sloth_objective) (sloth_slo_info)",
        "current_burn": "max by (sloth_id) (slo:current_burn_rate:ratio)",
        "budget_remaining": "max by (sloth_id) (slo:period_error_budget_remaining:ratio)",
        "period_days": "max by (sloth_id) (slo:time_period:days)",
        "sli": sli_query(windows),
        "alerts": (
            'max by (sloth_id, sloth_severity, alertstate, alertname) (ALERTS{sloth_id!=""})'
        ),
        "coverage": coverage_query(coverage_range_ms),
    }


SNAPSHOT_QUERIES: Mapping[str, str] = snapshot_queries()
"""The queries of a snapshot for the built-in windows (the count is the same for any)."""


class Severity(StrEnum):
    """Sloth's alert severities, worst first in :data:`SEVERITY_RANK`."""

    PAGE = "page"
    TICKET = "ticket"


class Level(StrEnum):
    """How a burn rate compares with the alert thresholds of its window."""

    NO_DATA = "nodata"
    OK = "ok"  # below 1: the budget lasts longer than the period
    ELEVATED = "elevated"  # at or above 1, in no met alert condition
    TICKET = "ticket"  # in a met ticket condition (both its windows over the factor)
    PAGE = "page"  # in a met page condition


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """One series of ``ALERTS`` for an SLO: its name, severity and state."""

    name: str
    severity: str
    state: str  # firing or pending


@dataclass
class LiveSLO:
    """What Prometheus says about one ``sloth_id``; any part may be missing."""

    sloth_id: str
    service: str = ""
    slo: str = ""
    objective: float | None = None  # percent, from sloth_slo_info's sloth_objective
    period_days: float | None = None
    current_burn: float | None = None
    budget_remaining: float | None = None
    sli_errors: dict[str, float] = field(default_factory=dict)  # window ("5m") -> ratio
    alerts: list[ActiveAlert] = field(default_factory=list)
    coverage_seconds: float | None = None  # time since the first sample (coverage module)

    def firing(self, severity: Severity) -> bool:
        """Tell whether an alert of ``severity`` fires for this SLO."""
        return any(a.severity == severity and a.state == "firing" for a in self.alerts)

    def pending(self) -> bool:
        """Tell whether an alert waits for its ``for`` time."""
        return any(alert.state == "pending" for alert in self.alerts)


@dataclass(frozen=True)
class Snapshot:
    """The joined answers of one round of queries, or why there are none."""

    by_id: Mapping[str, LiveSLO] = field(default_factory=dict)
    taken_at: float = 0.0
    configured: bool = True
    error: str | None = None
    coverage_error: str | None = None  # the coverage query alone was refused

    @property
    def available(self) -> bool:
        """True when Prometheus answered."""
        return self.configured and self.error is None


NOT_CONFIGURED = Snapshot(configured=False)


def _number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def join_samples(results: Mapping[str, Sequence[Sample]]) -> dict[str, LiveSLO]:
    """Join the answers of :func:`snapshot_queries` into one :class:`LiveSLO` per sloth id."""
    by_id: dict[str, LiveSLO] = {}

    def live(sample: Sample) -> LiveSLO | None:
        sloth_id = sample.labels.get("sloth_id")
        if not sloth_id:
            return None
        found = by_id.get(sloth_id)
        if found is None:
            found = by_id[sloth_id] = LiveSLO(sloth_id)
        found.service = found.service or sample.labels.get("sloth_service", "")
        found.slo = found.slo or sample.labels.get("sloth_slo", "")
        return found

    for sample in results.get("info", ()):
        if (item := live(sample)) is not None:
            try:
                item.objective = float(sample.labels.get("sloth_objective", ""))
            except ValueError:
                item.objective = None
    for key, attribute in (
        ("current_burn", "current_burn"),
        ("budget_remaining", "budget_remaining"),
        ("period_days", "period_days"),
        ("coverage", "coverage_seconds"),
    ):
        for sample in results.get(key, ()):
            if (item := live(sample)) is not None:
                setattr(item, attribute, _number(sample.value))
    for sample in results.get("sli", ()):
        window = sample.labels.get("sloth_window")
        if window and (item := live(sample)) is not None:
            value = _number(sample.value)
            if value is not None:
                item.sli_errors[window] = value
    for sample in results.get("alerts", ()):
        if (item := live(sample)) is not None:
            item.alerts.append(
                ActiveAlert(
                    name=sample.labels.get("alertname", ""),
                    severity=sample.labels.get("sloth_severity", ""),
                    state=sample.labels.get("alertstate", "firing"),
                )
            )
    return by_id


def fetch_snapshot(
    prometheus: Prometheus | None,
    windows: Iterable[str] = DEFAULT_ALERT_WINDOWS,
    coverage_range_ms: int = DEFAULT_RANGE_MS,
) -> Snapshot:
    """Run the fixed queries; an unreachable Prometheus gives a snapshot saying so.

    A Prometheus that refuses only the coverage query (a store without subqueries) still
    gives its numbers: the coverage is unknown, so no verdict is claimed.
    """
    if prometheus is None:
        return NOT_CONFIGURED
    started = time.time()
    queries = snapshot_queries(windows, coverage_range_ms)
    coverage_error = None
    # Concurrently: the page waits for the slowest query, not for their sum.
    with ThreadPoolExecutor(len(queries), thread_name_prefix="slo-query") as pool:
        futures = {key: pool.submit(prometheus.query, query) for key, query in queries.items()}
        try:
            results = {key: futures[key].result() for key in futures if key != "coverage"}
        except PrometheusError as error:
            return Snapshot(taken_at=started, error=str(error))
        try:
            results["coverage"] = futures["coverage"].result()
        except PrometheusQueryError as error:
            coverage_error = str(error)
        except PrometheusError as error:
            return Snapshot(taken_at=started, error=str(error))
    return Snapshot(join_samples(results), taken_at=started, coverage_error=coverage_error)


def fetch_windows(prometheus: Prometheus, sloth_id: str) -> dict[str, float]:
    """Every SLI error ratio window of one SLO (the detail page's alert table needs them)."""
    query = f'max by (sloth_window) ({{__name__=~"{SLI_PREFIX}.+", sloth_id={go_quote(sloth_id)}}})'
    found = {}
    for sample in prometheus.query(query):
        window, value = sample.labels.get("sloth_window"), _number(sample.value)
        if window and value is not None:
            found[window] = value
    return found


@dataclass(frozen=True, slots=True)
class Condition:
    """One multiwindow condition: both windows must burn faster than ``factor``."""

    severity: Severity
    speed: str  # quick or slow
    short: str
    long: str
    factor: float
    budget_percent: float

    def uses(self, window: str) -> bool:
        """Tell whether ``window`` is this condition's short or long window."""
        return window in (self.short, self.long)


def conditions_of(windows: AlertWindows) -> list[Condition]:
    """Return the four alert conditions (page quick/slow, ticket quick/slow) of a period."""

    def condition(severity: Severity, speed: str, window: Window) -> Condition:
        return Condition(
            severity=severity,
            speed=speed,
            short=format_duration(window.short_ms),
            long=format_duration(window.long_ms),
            factor=windows.burn_factor(window),
            budget_percent=window.error_budget_percent,
        )

    return [
        condition(Severity.PAGE, "quick", windows.page_quick),
        condition(Severity.PAGE, "slow", windows.page_slow),
        condition(Severity.TICKET, "quick", windows.ticket_quick),
        condition(Severity.TICKET, "slow", windows.ticket_slow),
    ]


def alert_windows(windows: AlertWindows) -> list[str]:
    """Return every window the alert conditions use (5m, 30m, 1h, 2h, 6h, 1d, 3d for 30 days).

    The overview fetches them all so that it can tell which conditions are met, as the
    detail page does, not only the four windows it shows.
    """
    pairs = (windows.page_quick, windows.page_slow, windows.ticket_quick, windows.ticket_slow)
    chosen = sorted({ms for pair in pairs for ms in (pair.short_ms, pair.long_ms)})
    return [format_duration(ms) for ms in chosen]


def overview_windows(windows: AlertWindows) -> list[str]:
    """Return the burn windows of the overview: 5m, 1h, 6h and 3d for the built-in periods.

    That is the page alert's quick short and long window, the slow page alert's long
    window and the slow ticket alert's long window, so custom windows work the same.
    """
    chosen = [
        windows.page_quick.short_ms,
        windows.page_quick.long_ms,
        windows.page_slow.long_ms,
        windows.ticket_slow.long_ms,
    ]
    return [format_duration(ms) for ms in dict.fromkeys(chosen)]


def error_budget(objective: float) -> float:
    """Return the error budget (allowed error ratio) of an objective in percent: 99.9 -> 0.001."""
    return (100 - objective) / 100


def burn_rate(sli_error: float | None, objective: float) -> float | None:
    """How many times faster than "exactly on budget" an error ratio spends the budget."""
    if sli_error is None:
        return None
    return sli_error / error_budget(objective)


def level_of(window: str, burn: float | None, met: Sequence[Condition]) -> Level:
    """Colour a window by the met conditions (both windows over the factor) that use it.

    A window over a factor on its own is only elevated: no alert fires on one window, so
    its colour must not say one does (the row's status would then disagree with it).
    """
    if burn is None:
        return Level.NO_DATA
    severities = {c.severity for c in met if c.uses(window)}
    if Severity.PAGE in severities:
        return Level.PAGE
    if Severity.TICKET in severities:
        return Level.TICKET
    return Level.ELEVATED if burn >= 1 else Level.OK


def lowest_factor(window: str, conditions: Sequence[Condition]) -> float | None:
    """Return the smallest alert factor of the conditions using ``window`` (None: no condition)."""
    factors = [c.factor for c in conditions if c.uses(window)]
    return min(factors) if factors else None


def period_ms_of(live: LiveSLO) -> int | None:
    """Return the SLO period Prometheus reports (``slo:time_period:days``), in milliseconds."""
    if live.period_days is None or live.period_days <= 0:
        return None
    return round(live.period_days * 86_400_000)


def period_window(period_ms: int) -> str:
    """Return the ``sloth_window`` of the period SLI (``30d``; ``4w`` for 28 days)."""
    return format_duration(period_ms)


def window_ms(window: str) -> int:
    """Milliseconds of a window label such as ``5m``."""
    return parse_duration(window)
