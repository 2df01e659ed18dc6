"""Sloth's rules for one SLO: SLI error ratios, metadata recordings, page and ticket alerts.

The expressions, names, labels and annotations are Sloth's (v0.16.0) so that Sloth's
Grafana dashboards and any query written for Sloth work on our output. Three opt-in
improvements change the expressions (the default output is Sloth's):

- ``zero_traffic_guard``: no NaN error ratio when there are no requests (0/0). A NaN in
  the 5m series poisons the period ratio (``sum_over_time``) for the whole period.
- ``error_query_fallback``: ``or on() vector(0)`` on error queries, so a healthy service
  whose error counter has no series yet gets a 0 ratio instead of no data.
- ``inhibit_ticket``: the ticket alert is silenced while the page alert fires for the same
  SLO, in the expression itself (rule files cannot carry Alertmanager inhibitions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portal.slo.compiler.plugins import INFO_METRIC
from portal.slo.compiler.promql import (
    duration_hours,
    format_duration,
    go_float,
    go_float_fixed,
    label_filter,
)
from portal.slo.compiler.resolve import AlertMeta, ResolvedSLO
from portal.slo.compiler.windows import Window

DEFAULT_SLOTH_VERSION = "v0.16.0"
"""The Sloth release whose output is reproduced (the conformance snapshot)."""

WINDOW_LABEL = "sloth_window"
SEVERITY_LABEL = "sloth_severity"
SLI_METRIC = "slo:sli_error:ratio_rate{window}"
ERROR_BUDGET_METRIC = "slo:error_budget:ratio"
PERIOD_BURN_METRIC = "slo:period_burn_rate:ratio"
ID_MATCHING = "on(sloth_id, sloth_slo, sloth_service)"


@dataclass(frozen=True)
class RuleOptions:
    """Switches of the generator (Sloth's CLI flags plus the opt-in improvements)."""

    sloth_version: str = DEFAULT_SLOTH_VERSION
    disable_recordings: bool = False
    disable_alerts: bool = False
    optimized: bool = True
    zero_traffic_guard: bool = False
    error_query_fallback: bool = False
    inhibit_ticket: bool = False


@dataclass(slots=True)
class Rule:
    """A recording (``record``) or alerting (``alert``) rule."""

    expr: str
    labels: dict[str, str]
    record: str = ""
    alert: str = ""
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class RuleGroup:
    """A rule group; ``interval`` only when a plugin sets one."""

    name: str
    rules: list[Rule]
    interval: str | None = None


def sli_metric(window_ms: int) -> str:
    """Name the SLI recording of a window: ``slo:sli_error:ratio_rate5m``."""
    return SLI_METRIC.format(window=format_duration(window_ms))


def id_labels(slo: ResolvedSLO) -> dict[str, str]:
    """Return the labels that identify an SLO's series."""
    return {"sloth_id": slo.id, "sloth_service": slo.service, "sloth_slo": slo.name}


def objective_ratio(slo: ResolvedSLO) -> float:
    """Return the objective as a ratio, as Sloth computes it (99.9 -> 0.9990000000000001)."""
    return slo.objective / 100


def error_budget_ratio(slo: ResolvedSLO) -> float:
    """Return the error budget as the alerts use it (``0.0009999999999999432`` for 99.9)."""
    return (100 - slo.objective) / 100


def alert_pairs(slo: ResolvedSLO, *, page: bool) -> tuple[Window, Window]:
    """Return the quick and slow windows of the page (or ticket) alert."""
    windows = slo.windows
    if page:
        return windows.page_quick, windows.page_slow
    return windows.ticket_quick, windows.ticket_slow


def _sli_expr(slo: ResolvedSLO, window: str, options: RuleOptions) -> str:
    if slo.ratio_query is not None:
        ratio = slo.ratio_query.render(window)
        return f"(({ratio}) >= 0)" if options.zero_traffic_guard else f"({ratio})"
    assert slo.error_query is not None
    assert slo.total_query is not None
    error = slo.error_query.render(window)
    total = slo.total_query.render(window)
    if options.error_query_fallback:
        error = f"({error}) or on() vector(0)"
    if options.zero_traffic_guard:
        total = f"({total}) > 0"
    return f"({error})\n/\n({total})\n"


def sli_group(slo: ResolvedSLO, options: RuleOptions) -> RuleGroup:
    """Record the SLI error ratio of every window the alerts need, then of the period."""
    ids = id_labels(slo)
    base = {**ids, **slo.labels}
    rules = []
    period = slo.windows.period_ms
    windows = [ms for ms in slo.windows.sli_windows() if ms != period]
    for window_ms in windows:
        window = format_duration(window_ms)
        rules.append(
            Rule(
                record=sli_metric(window_ms),
                expr=_sli_expr(slo, window, options),
                labels={**base, WINDOW_LABEL: window},
            )
        )
    period_window = format_duration(period)
    if options.optimized:
        # Sloth's optimisation: average the shortest SLI over the period instead of
        # evaluating the query over 30 days.
        source = sli_metric(slo.windows.page_quick.short_ms) + label_filter(ids)
        expr = (
            f"sum_over_time({source}[{period_window}])\n/ ignoring ({WINDOW_LABEL})\n"
            f"count_over_time({source}[{period_window}])\n"
        )
    else:
        expr = _sli_expr(slo, period_window, options)
    rules.append(
        Rule(record=sli_metric(period), expr=expr, labels={**base, WINDOW_LABEL: period_window})
    )
    return RuleGroup(f"sloth-slo-sli-recordings-{slo.id}", rules, slo.plugins.sli_interval)


def _burn_rate(metric: str, selector: str) -> str:
    return f"{metric}{selector}\n/ {ID_MATCHING} group_left\n{ERROR_BUDGET_METRIC}{selector}\n"


def meta_group(slo: ResolvedSLO, options: RuleOptions) -> RuleGroup:
    """Objective, error budget, period, burn rates, budget remaining and the info metric."""
    ids = id_labels(slo)
    labels = {**ids, **slo.labels}
    selector = label_filter(ids)
    objective = go_float(objective_ratio(slo))
    days = go_float(duration_hours(slo.windows.period_ms) / 24)
    info_labels = {
        **labels,
        "sloth_version": options.sloth_version,
        "sloth_mode": slo.mode,
        "sloth_spec": slo.spec_version,
        "sloth_objective": go_float_fixed(slo.objective),
    }
    rules = [
        Rule(record="slo:objective:ratio", expr=f"vector({objective})", labels=labels),
        Rule(record=ERROR_BUDGET_METRIC, expr=f"vector(1-{objective})", labels=labels),
        Rule(record="slo:time_period:days", expr=f"vector({days})", labels=labels),
        Rule(
            record="slo:current_burn_rate:ratio",
            expr=_burn_rate(sli_metric(slo.windows.page_quick.short_ms), selector),
            labels=labels,
        ),
        Rule(
            record=PERIOD_BURN_METRIC,
            expr=_burn_rate(sli_metric(slo.windows.period_ms), selector),
            labels=labels,
        ),
        Rule(
            record="slo:period_error_budget_remaining:ratio",
            expr=f"1 - {PERIOD_BURN_METRIC}{selector}",
            labels=labels,
        ),
        Rule(record=INFO_METRIC, expr="vector(1)", labels=info_labels),
    ]
    for rule in rules:
        extra = slo.plugins.info_labels.get(rule.record)
        if extra:
            rule.labels = {**rule.labels, **extra}
    return RuleGroup(f"sloth-slo-meta-recordings-{slo.id}", rules, slo.plugins.meta_interval)


def _condition(slo: ResolvedSLO, window: Window, selector: str) -> str:
    factor = go_float(slo.windows.burn_factor(window))
    threshold = f"({factor} * {go_float(error_budget_ratio(slo))})"
    short = sli_metric(window.short_ms)
    long = sli_metric(window.long_ms)
    return (
        "(\n"
        f"    max({short}{selector} > {threshold}) without ({WINDOW_LABEL})\n"
        "    and\n"
        f"    max({long}{selector} > {threshold}) without ({WINDOW_LABEL})\n"
        ")"
    )


def alert_expr(slo: ResolvedSLO, *, page: bool) -> str:
    """Write the multiwindow, multi-burn-rate condition of the page (or ticket) alert."""
    selector = label_filter(id_labels(slo))
    quick, slow = alert_pairs(slo, page=page)
    return f"{_condition(slo, quick, selector)}\nor\n{_condition(slo, slow, selector)}\n"


def _alert_rule(slo: ResolvedSLO, meta: AlertMeta, severity: str, expr: str) -> Rule:
    title = (
        f"({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} "
        "SLO error budget burn rate is too fast."
    )
    summary = (
        "{{$labels.sloth_service}} {{$labels.sloth_slo}} "
        "SLO error budget burn rate is over expected."
    )
    return Rule(
        alert=meta.name,
        expr=expr,
        labels={SEVERITY_LABEL: severity, **meta.labels},
        annotations={"title": title, "summary": summary, **meta.annotations},
    )


def alert_group(slo: ResolvedSLO, options: RuleOptions) -> RuleGroup:
    """Build the page and the ticket alert (those not disabled)."""
    rules = []
    if slo.page is not None:
        rules.append(_alert_rule(slo, slo.page, "page", alert_expr(slo, page=True)))
    if slo.ticket is not None:
        expr = alert_expr(slo, page=False)
        if options.inhibit_ticket and slo.page is not None:
            expr = (
                f"(\n{expr})\nunless on(sloth_id, sloth_service, sloth_slo)\n"
                f"(\n{alert_expr(slo, page=True)})\n"
            )
        rules.append(_alert_rule(slo, slo.ticket, "ticket", expr))
    return RuleGroup(f"sloth-slo-alerts-{slo.id}", rules, slo.plugins.alert_interval)


def slo_rule_groups(slo: ResolvedSLO, options: RuleOptions) -> list[RuleGroup]:
    """Every rule group of one SLO, in Sloth's order; empty groups are left out."""
    groups = []
    if not options.disable_recordings:
        groups += [sli_group(slo, options), meta_group(slo, options)]
    if not options.disable_alerts:
        groups.append(alert_group(slo, options))
    return [group for group in groups if group.rules]
