"""One status per SLO, from which every page takes its words and colours.

The overview row, the detail page's tiles and alert table, and a Component's SLO section
all show :func:`judge`'s :class:`Judgement`, so an alert state, a threshold and a colour
can no longer disagree. The order, worst first:

1. a **page**, then a **ticket**: Prometheus' alert fires (``ALERTS``), or the portal's own
   numbers meet one of the severity's multiwindow conditions (both windows burn faster than
   the factor) while the alert does not fire yet (rule groups are evaluated apart, or
   the alert is disabled). Either way the row is never green;
2. an alert **pending** its ``for`` time;
3. what the period says, given enough data (see :mod:`portal.slo.coverage`): **budget
   exhausted** (the SLI misses the objective), **meets the objective**, or **not enough
   data yet** (with how much there is), or **no data** at all.

An alert outranks the period: an SLO within its objective so far but burning fast is said
to be "within the objective so far", never "meets the objective".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from portal.slo.burn import ActiveAlert, Condition, Severity
from portal.slo.coverage import Coverage


class Tone(StrEnum):
    """The colour of a status (CSS classes ``badge bad`` and so on)."""

    BAD = "bad"
    WARN = "warn"
    BUSY = "busy"
    OK = "ok"
    NEUTRAL = "neutral"


class Verdict(StrEnum):
    """What an SLO's row says."""

    PAGE = "page"
    TICKET = "ticket"
    PENDING = "pending"
    EXHAUSTED = "exhausted"
    MEETS = "meets"
    NOT_ENOUGH_DATA = "insufficient"
    NO_DATA = "nodata"


TONES: Mapping[Verdict, Tone] = {
    Verdict.PAGE: Tone.BAD,
    Verdict.TICKET: Tone.WARN,
    Verdict.PENDING: Tone.BUSY,
    Verdict.EXHAUSTED: Tone.BAD,
    Verdict.MEETS: Tone.OK,
    Verdict.NOT_ENOUGH_DATA: Tone.NEUTRAL,
    Verdict.NO_DATA: Tone.NEUTRAL,
}

RANKS: Mapping[Verdict, int] = {
    Verdict.PAGE: 0,
    Verdict.TICKET: 1,
    Verdict.PENDING: 2,
    Verdict.EXHAUSTED: 3,
    Verdict.MEETS: 3,
    Verdict.NOT_ENOUGH_DATA: 3,
    Verdict.NO_DATA: 4,
}
"""Urgency of a verdict: the overview sorts by it, then by burn and budget."""


class ConditionState(StrEnum):
    """The state of one multiwindow condition on the detail page's alert table."""

    FIRING = "firing"
    MET = "met"  # both windows over the factor, the alert not firing (yet)
    PENDING = "pending"
    INACTIVE = "inactive"
    NO_DATA = "no data"


def is_met(condition: Condition, burns: Mapping[str, float | None]) -> bool:
    """Tell whether both windows of ``condition`` burn faster than its factor."""
    short, long = burns.get(condition.short), burns.get(condition.long)
    return short is not None and long is not None and min(short, long) > condition.factor


def met_conditions(
    conditions: Iterable[Condition], burns: Mapping[str, float | None]
) -> tuple[Condition, ...]:
    """Return the conditions whose two windows both burn faster than their factor."""
    return tuple(condition for condition in conditions if is_met(condition, burns))


def _states(alerts: Iterable[ActiveAlert], severity: str) -> set[str]:
    return {alert.state for alert in alerts if alert.severity == severity}


def condition_state(
    condition: Condition,
    alerts: Sequence[ActiveAlert],
    met: Sequence[Condition],
    has_data: bool,
) -> ConditionState:
    """Return the state of one row of the alert table, from the facts :func:`judge` uses.

    Sloth has one alert per severity for its two conditions. A firing (or pending) alert
    is shown on the rows of its severity whose condition is met, or on both when the
    portal's numbers meet neither (they were read a moment apart from the evaluation);
    a row whose windows are under the threshold while the other condition fires stays
    inactive, so its state agrees with its numbers.
    """
    states = _states(alerts, condition.severity.value)
    siblings_met = any(other.severity is condition.severity for other in met)
    attributable = condition in met or not siblings_met
    if attributable and "firing" in states:
        return ConditionState.FIRING
    if attributable and "pending" in states:
        return ConditionState.PENDING
    if condition in met:
        return ConditionState.MET
    return ConditionState.INACTIVE if has_data else ConditionState.NO_DATA


@dataclass(frozen=True, slots=True)
class Judgement:
    """An SLO's status: the verdict of its row, what the period says, and the words for both."""

    verdict: Verdict
    period: Verdict  # EXHAUSTED, MEETS, NOT_ENOUGH_DATA or NO_DATA
    label: str  # the badge
    note: str  # the sentence about the period (SLI tile, badge title)
    coverage: Coverage

    @property
    def tone(self) -> Tone:
        """The colour of the row's badge."""
        return TONES[self.verdict]

    @property
    def rank(self) -> int:
        """Urgency, 0 first."""
        return RANKS[self.verdict]

    @property
    def period_tone(self) -> Tone:
        """The colour of the period's own values (budget, SLI): red only when exhausted."""
        return Tone.BAD if self.period is Verdict.EXHAUSTED else Tone.NEUTRAL

    @property
    def alerting(self) -> bool:
        """True when a page or ticket alert fires or its condition is met."""
        return self.verdict in (Verdict.PAGE, Verdict.TICKET)


def _period(
    has_data: bool,
    coverage: Coverage,
    sli: float | None,
    objective: float | None,
    budget_remaining: float | None,
) -> tuple[Verdict, str]:
    if not has_data:
        return Verdict.NO_DATA, "no data"
    if not coverage.enough:
        return Verdict.NOT_ENOUGH_DATA, f"not enough data yet ({coverage.text})"
    exhausted = budget_remaining is not None and budget_remaining <= 0
    missed = sli is not None and objective is not None and sli * 100 < objective
    if exhausted or missed:
        return Verdict.EXHAUSTED, "misses the objective: the error budget is exhausted"
    if sli is None and budget_remaining is None:
        return Verdict.NO_DATA, "no value over the period"
    return Verdict.MEETS, "meets the objective"


def judge(
    *,
    alerts: Sequence[ActiveAlert],
    met: Sequence[Condition],
    has_data: bool,
    coverage: Coverage,
    sli: float | None,
    objective: float | None,
    budget_remaining: float | None,
) -> Judgement:
    """Decide an SLO's status (see the module's order)."""
    period, note = _period(has_data, coverage, sli, objective, budget_remaining)
    met_severities = {condition.severity for condition in met}
    for severity in (Severity.PAGE, Severity.TICKET):
        firing = "firing" in _states(alerts, severity.value)
        if firing or severity in met_severities:
            label = f"{severity.value} firing" if firing else f"{severity.value} condition met"
            if period is Verdict.MEETS:
                why = "alert fires" if firing else "condition is met"
                note = f"within the objective so far, but the {severity.value} {why}"
            return Judgement(Verdict(severity.value), period, label, note, coverage)
    if any(alert.state == "pending" for alert in alerts):
        if period is Verdict.MEETS:
            note = "within the objective so far, an alert is pending"
        return Judgement(Verdict.PENDING, period, "pending", note, coverage)
    labels = {
        Verdict.NO_DATA: "no data",
        Verdict.NOT_ENOUGH_DATA: "not enough data yet",
        Verdict.EXHAUSTED: "budget exhausted",
        Verdict.MEETS: "meets the objective",
    }
    return Judgement(period, period, labels[period], note, coverage)
