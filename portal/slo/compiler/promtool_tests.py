"""``promtool test rules`` unit tests for the generated rules of one SLO.

The synthetic input series are the SLI error ratios themselves
(``slo:sli_error:ratio_rate<window>``), one per window, shaped as a burn that starts at
time 0: each window's ratio ramps up over that window, as a real rate over a window would.
The SLO's own queries match no series in the test, so their recording rules record
nothing and the inputs stand in for them; the alerting rules are the real ones.

Three cases: a fast burn fires the page alert within its long window, a slow burn fires
the ticket alert, a healthy error ratio fires nothing. The expected firing steps come
from evaluating the same conditions on the same values (promtool's series expansion adds
the increment repeatedly, and so does ``_ramp``), so the tests pin thresholds exactly:
not firing one step before the first firing step, firing at it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from portal.slo.compiler.promql import format_duration, series_selector
from portal.slo.compiler.render import dump
from portal.slo.compiler.resolve import AlertMeta, ResolvedSLO
from portal.slo.compiler.rules import (
    SEVERITY_LABEL,
    WINDOW_LABEL,
    RuleOptions,
    alert_pairs,
    error_budget_ratio,
    id_labels,
    objective_ratio,
    sli_metric,
)
from portal.slo.compiler.windows import Window

# Burns whose long window spans up to this many steps (a day at 5m) are replayed in full.
SHORT_REPLAY_STEPS = 288
_LABEL_REFERENCE = re.compile(r"\{\{-?\s*(?:\$labels|\.Labels)\.([a-zA-Z_][a-zA-Z0-9_]*)\s*-?\}\}")


@dataclass(frozen=True)
class _Alert:
    severity: str
    meta: AlertMeta
    conditions: tuple[Window, Window]


def expand_template(text: str, labels: Mapping[str, str]) -> str | None:
    """Expand ``{{$labels.name}}`` as Prometheus would; None for any other template action."""
    expanded = _LABEL_REFERENCE.sub(lambda match: labels.get(match.group(1), "<no value>"), text)
    return None if "{{" in expanded else expanded


def _ramp(ratio: float, window_steps: int, start: int, steps: int) -> tuple[str, list[float]]:
    """Shape a burn of ``ratio`` seen through a window of ``window_steps``, from step ``start``.

    The burn began at step 0; the series covers steps ``start`` to ``start + steps``.
    """
    if start >= window_steps:
        return f"{ratio!r}x{steps}", [ratio] * (steps + 1)
    increment = ratio / window_steps
    current = ratio * start / window_steps
    ramp_steps = min(window_steps - 1 - start, steps)
    text = f"{current!r}+{increment!r}x{ramp_steps}" if ramp_steps else repr(current)
    values = []
    for _ in range(ramp_steps + 1):
        values.append(current)
        current += increment  # promtool expands "a+bxn" by adding b again and again
    if steps > ramp_steps:
        text += f" {ratio!r}x{steps - ramp_steps - 1}"
        values += [ratio] * (steps - ramp_steps)
    return text, values


class _Case:
    """One promtool test case: input series, then what fires at which evaluation times."""

    def __init__(self, slo: ResolvedSLO, alerts: list[_Alert], step_ms: int) -> None:
        self.slo, self.alerts, self.step_ms = slo, alerts, step_ms
        self.windows = [ms for ms in slo.windows.sli_windows() if ms != slo.windows.period_ms]
        self.base = {**id_labels(slo), **slo.labels}
        self.values: dict[int, list[float]] = {}
        self.series: list[dict[str, str]] = []
        budget = error_budget_ratio(slo)
        # Per alert: (threshold, short window, long window) of each of its two conditions.
        self.conditions = {
            id(alert): [
                (slo.windows.burn_factor(w) * budget, w.short_ms, w.long_ms)
                for w in alert.conditions
            ]
            for alert in alerts
        }

    def burn(self, ratio: float, steps: int, *, start: int = 0, steady: bool = False) -> None:
        """Feed every SLI window with a burn of ``ratio`` (steady, or begun ``start`` steps ago)."""
        for window_ms in self.windows:
            if steady:
                text, values = f"{ratio!r}x{steps}", [ratio] * (steps + 1)
            else:
                text, values = _ramp(ratio, window_ms // self.step_ms, start, steps)
            labels = {**self.base, WINDOW_LABEL: format_duration(window_ms)}
            self.values[window_ms] = values
            self.series.append(
                {"series": series_selector(sli_metric(window_ms), labels), "values": text}
            )

    def fires(self, alert: _Alert, step: int, page_fires: bool) -> bool:
        """Evaluate the alert's conditions at a step, as Prometheus will."""
        values = self.values
        for threshold, short, long in self.conditions[id(alert)]:
            if values[short][step] > threshold and values[long][step] > threshold:
                return not (alert.severity == "ticket" and page_fires)
        return False

    def firing(self, step: int, inhibit: bool) -> list[_Alert]:
        """Return the alerts firing at a step."""
        page = next((a for a in self.alerts if a.severity == "page"), None)
        page_fires = page is not None and self.fires(page, step, False)
        return [a for a in self.alerts if self.fires(a, step, inhibit and page_fires)]

    def near_threshold(self, steps: int) -> bool:
        """Tell whether some input value is within rounding distance of some threshold."""
        for conditions in self.conditions.values():
            for threshold, short, long in conditions:
                margin = 1e-9 * threshold
                for ms in (short, long):
                    if any(abs(v - threshold) <= margin for v in self.values[ms][: steps + 1]):
                        return True
        return False

    def first_step(self, severity: str, steps: int, inhibit: bool) -> int:
        """Return the first step at which the alert of ``severity`` fires."""
        for step in range(steps + 1):
            if any(a.severity == severity for a in self.firing(step, inhibit)):
                return step
        return steps


def _burn(
    alert: _Alert,
    thresholds: list[float],
    factor: Callable[[Window], float],
    budget: float,
) -> tuple[float, Window]:
    """Pick the error ratio of a burn that fires ``alert``, and the condition it trips."""
    quick, slow = alert.conditions
    if alert.severity == "page":
        # A total outage, caught by the quick condition when it can be (else the slow one);
        # when not even 100% errors reach a threshold, a synthetic ratio above it.
        window = quick if factor(quick) * budget < 1 or factor(slow) * budget >= 1 else slow
        threshold = factor(window) * budget
        return (1.0 if threshold < 1 else threshold * 2), window
    # A slow burn: above the lower ticket threshold, below every other threshold when the
    # windows allow it (geometric mean, so no step lands exactly on a threshold).
    window = min(alert.conditions, key=lambda w: factor(w) * budget)
    threshold = factor(window) * budget
    above = [t for t in thresholds if t > threshold]
    return (math.sqrt(threshold * min(above)) if above else threshold * 1.5), window


def _expected(case: _Case, alert: _Alert) -> dict[str, Any] | None:
    labels = {key: value for key, value in case.base.items() if key != WINDOW_LABEL}
    final = dict(labels)
    for name, text in {SEVERITY_LABEL: alert.severity, **alert.meta.labels}.items():
        expanded = expand_template(text, labels)
        if expanded is None:
            return None
        final[name] = expanded
    annotations = {}
    defaults = {
        "title": f"({alert.severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} "
        "SLO error budget burn rate is too fast.",
        "summary": "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn "
        "rate is over expected.",
    }
    for name, text in {**defaults, **alert.meta.annotations}.items():
        expanded = expand_template(text, labels)
        if expanded is None:
            return {"exp_labels": final, "exp_annotations": None}
        annotations[name] = expanded
    return {"exp_labels": final, "exp_annotations": annotations}


def _assertions(case: _Case, steps: list[int], inhibit: bool) -> dict[str, list[Any]]:
    alert_tests: list[Any] = []
    expr_tests: list[Any] = []
    names = sorted({alert.meta.name for alert in case.alerts})
    for step in steps:
        eval_time = format_duration(step * case.step_ms)
        firing = case.firing(step, inhibit)
        for name in names:
            expected = [_expected(case, alert) for alert in firing if alert.meta.name == name]
            if any(item is None for item in expected):
                continue  # label templates beyond $labels: nothing reliable to assert
            if all(item and item["exp_annotations"] is not None for item in expected):
                alert_tests.append(
                    {"eval_time": eval_time, "alertname": name, "exp_alerts": expected}
                )
                continue
            # Annotations use templates we cannot expand: assert on the ALERTS series.
            samples = [
                {
                    "labels": series_selector(
                        "ALERTS",
                        {**item["exp_labels"], "alertname": name, "alertstate": "firing"},
                    ),
                    "value": 1,
                }
                for item in expected
                if item
            ]
            selector = series_selector("ALERTS", {"alertname": name, "sloth_id": case.slo.id})
            expr_tests.append({"expr": selector, "eval_time": eval_time, "exp_samples": samples})
    return {"alert_rule_test": alert_tests, "promql_expr_test": expr_tests}


def _test(name: str, case: _Case, body: dict[str, list[Any]]) -> dict[str, Any]:
    test: dict[str, Any] = {
        "name": name,
        "interval": format_duration(case.step_ms),
        "input_series": case.series,
    }
    test.update({key: items for key, items in body.items() if items})
    return test


def slo_test_file(slo: ResolvedSLO, rule_file: str, options: RuleOptions) -> str | None:
    """Write the promtool unit tests of one SLO (None when its rules have nothing to test)."""
    alerts: list[_Alert] = []
    if not options.disable_alerts:
        for severity, meta in (("page", slo.page), ("ticket", slo.ticket)):
            if meta is not None:
                alerts.append(_Alert(severity, meta, alert_pairs(slo, page=severity == "page")))
    if not alerts and options.disable_recordings:
        return None
    windows = slo.windows
    conditions = [w for alert in alerts for w in alert.conditions]
    all_windows = [ms for ms in windows.sli_windows() if ms != windows.period_ms]
    step_ms = math.gcd(*all_windows)
    budget = error_budget_ratio(slo)
    thresholds = [windows.burn_factor(w) * budget for w in conditions]
    inhibit = options.inhibit_ticket
    tests = []
    for severity in ("page", "ticket"):
        alert = next((a for a in alerts if a.severity == severity), None)
        if alert is None:
            continue
        ratio, window = _burn(alert, thresholds, windows.burn_factor, budget)
        long_steps = window.long_ms // step_ms
        case = _Case(slo, alerts, step_ms)
        for _ in range(20):
            case = _Case(slo, alerts, step_ms)
            case.burn(ratio, long_steps)
            if not case.near_threshold(long_steps):
                break
            # Sitting exactly on a threshold would test float rounding, not the rules.
            ratio *= 1.01
        first = case.first_step(severity, long_steps, inhibit)
        # promtool evaluates every rule at every step from 0: start the series just before
        # the alert fires (the burn began earlier) instead of replaying days of it.
        start = max(first - 2, 0)
        end = long_steps if long_steps - start <= SHORT_REPLAY_STEPS else first
        case = _Case(slo, alerts, step_ms)
        case.burn(ratio, end - start, start=start)
        fired = case.first_step(severity, end - start, inhibit)
        checks = sorted({max(fired - 1, 0), fired, end - start})
        speed = "fast" if severity == "page" else "slow"
        began = f", begun {format_duration(start * step_ms)} before the test" if start else ""
        tests.append(
            _test(
                f"{slo.id}: a {speed} burn (error ratio {ratio:.6g}{began}) fires the "
                f"{severity} alert {format_duration(first * step_ms)} after it began, "
                f"within {format_duration(window.long_ms)}",
                case,
                _assertions(case, checks, inhibit),
            )
        )
    lowest = min(thresholds, default=budget)
    ratio = min(budget, lowest) * 0.5
    # A steady ratio looks the same at every step: two steps show it fires nothing.
    steps = 2
    case = _Case(slo, alerts, step_ms)
    case.burn(ratio, steps, steady=True)
    body = _assertions(case, [0, steps], inhibit)
    if not options.disable_recordings:
        body["promql_expr_test"] += _recording_checks(slo, case, ratio, steps)
    tests.append(
        _test(
            f"{slo.id}: a steady healthy error ratio ({ratio:.6g}, half the budget) fires nothing",
            case,
            body,
        )
    )
    header = [
        f"promtool unit tests of SLO {slo.id} (generated with its rules): "
        f"promtool test rules <this file>",
    ]
    document = {
        "rule_files": [rule_file],
        "evaluation_interval": format_duration(step_ms),
        "tests": tests,
    }
    return dump(document, header)


def _recording_checks(
    slo: ResolvedSLO, case: _Case, ratio: float, steps: int
) -> list[dict[str, Any]]:
    """Check the objective and the current burn rate recorded from the healthy input."""
    ids = id_labels(slo)
    labels = {**ids, **slo.labels}
    eval_time = format_duration(steps * case.step_ms)
    objective = objective_ratio(slo)
    short = slo.windows.page_quick.short_ms
    burn_labels = {**labels, WINDOW_LABEL: format_duration(short)}
    return [
        {
            "expr": series_selector("slo:objective:ratio", ids),
            "eval_time": eval_time,
            "exp_samples": [
                {"labels": series_selector("slo:objective:ratio", labels), "value": objective}
            ],
        },
        {
            "expr": series_selector("slo:current_burn_rate:ratio", ids),
            "eval_time": eval_time,
            "exp_samples": [
                {
                    "labels": series_selector("slo:current_burn_rate:ratio", burn_labels),
                    # Prometheus divides by vector(1-objective): the same float operations.
                    "value": ratio / (1 - objective),
                }
            ],
        },
    ]
