"""The SLO detail page: tiles, the multi-burn-rate alert table, charts, rules and spec.

The live numbers come from the overview's snapshot (no extra instant queries); the charts
add two range queries. The generated rules are the ones ``portal slo generate`` writes for
this SLO, highlighted like the review pages highlight files.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup

from portal.integrations.prometheus import Prometheus, PrometheusError
from portal.slo.burn import Condition, LiveSLO, burn_rate, error_budget
from portal.slo.charts import DEFAULT_RANGE, RANGES, Chart, fetch_charts
from portal.slo.compiler.generate import GenerateOptions, render_outputs
from portal.slo.compiler.resolve import ResolvedSLO
from portal.slo.overview import SLOStatus
from portal.slo.present import highlight_yaml
from portal.slo.verdict import ConditionState, condition_state


@dataclass(frozen=True)
class WindowBurn:
    """The burn rate over one window of a condition and its level against the condition."""

    window: str
    burn: float | None
    over: bool | None  # None: no data


@dataclass(frozen=True)
class AlertRow:
    """One row of the multi-burn-rate table: a condition, its two burns and its state."""

    condition: Condition
    error_ratio_threshold: float | None
    short: WindowBurn
    long: WindowBurn
    alert_state: ConditionState
    met: bool  # both windows burn faster than the factor (the condition holds)


def _window_burn(
    live: LiveSLO | None, objective: float | None, window: str, factor: float
) -> WindowBurn:
    error = live.sli_errors.get(window) if live else None
    burn = burn_rate(error, objective) if objective is not None else None
    return WindowBurn(window, burn, None if burn is None else burn > factor)


def alert_rows(status: SLOStatus) -> list[AlertRow]:
    """Build the alert table: each condition with both windows' burn and its state.

    The state comes from :func:`~portal.slo.verdict.condition_state`, with the same met
    conditions and alerts as the page's status, so a row never reads "inactive" while
    its two windows are over the threshold.
    """
    rows = []
    live = status.live
    alerts = live.alerts if live else []
    for condition in status.conditions:
        state = condition_state(condition, alerts, status.met, status.has_data)
        objective = status.objective
        rows.append(
            AlertRow(
                condition=condition,
                error_ratio_threshold=(
                    condition.factor * error_budget(objective) if objective is not None else None
                ),
                short=_window_burn(live, objective, condition.short, condition.factor),
                long=_window_burn(live, objective, condition.long, condition.factor),
                alert_state=state,
                met=condition in status.met,
            )
        )
    return rows


def rules_text(slo: ResolvedSLO) -> str:
    """Return the Prometheus rule file ``portal slo generate`` writes for this SLO alone."""
    (output,) = [o for o in render_outputs([slo], GenerateOptions()) if o.kind == "rules"]
    return output.text


def range_seconds(status: SLOStatus, range_key: str) -> tuple[str, int]:
    """Return the chart range asked for (``period`` for the whole SLO period), else the default."""
    if range_key == "period" and status.period_ms:
        return range_key, status.period_ms // 1000
    if range_key in RANGES:
        return range_key, RANGES[range_key]
    return DEFAULT_RANGE, RANGES[DEFAULT_RANGE]


@dataclass(frozen=True)
class Detail:
    """Everything on the detail page."""

    status: SLOStatus
    alert_rows: Sequence[AlertRow]
    range_key: str
    charts: Sequence[Chart] = ()
    chart_error: str | None = None
    rules: str = ""
    rules_html: Markup = field(default_factory=Markup)
    spec_html: Markup = field(default_factory=Markup)


def build_detail(
    status: SLOStatus,
    prometheus: Prometheus | None,
    range_key: str = DEFAULT_RANGE,
    *,
    charts: bool = True,
    now: float | None = None,
) -> Detail:
    """Assemble the detail page; a Prometheus failure only empties the charts."""
    range_key, seconds = range_seconds(status, range_key)
    found: list[Chart] = []
    chart_error = None
    if charts and prometheus is not None and status.objective is not None:
        end = time.time() if now is None else now
        try:
            found = fetch_charts(
                prometheus,
                status.sloth_id,
                status.conditions,
                status.objective,
                start=end - seconds,
                end=end,
            )
        except PrometheusError as error:
            chart_error = str(error)
    rules, rules_html, spec_html = "", Markup(""), Markup("")
    if status.entry is not None:
        rules = rules_text(status.entry.slo)
        rules_html = highlight_yaml(rules)
        spec_html = highlight_yaml(status.entry.spec.text)
    return Detail(
        status=status,
        alert_rows=alert_rows(status),
        range_key=range_key,
        charts=found,
        chart_error=chart_error,
        rules=rules,
        rules_html=rules_html,
        spec_html=spec_html,
    )
