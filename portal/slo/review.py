"""Review check of an SLO spec: parse, generate, ``promtool check rules`` and ``test rules``.

``review_slo_file`` returns findings in the shape every review check reports: one per
spec error (naming file, SLO and field), warnings for SLOs that generate but cannot work
(a query without ``{{.window}}``, an alert no error ratio can trigger), and one per file
promtool rejects. No findings means the spec is good and its rules pass their tests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from portal.integrations.kubernetes import Finding, Severity
from portal.integrations.promtool import Promtool, PromtoolNotFoundError
from portal.slo.compiler.errors import InvalidSpecError, SpecError
from portal.slo.compiler.generate import (
    GenerateOptions,
    render_outputs,
    resolve_sources,
    write_outputs,
)
from portal.slo.compiler.promql import go_float
from portal.slo.compiler.resolve import ResolvedSLO
from portal.slo.compiler.rules import alert_pairs, error_budget_ratio

SPEC_REASON = (
    "Burn-rate alerts and the error budget are generated from this spec: a spec the "
    "generator rejects leaves the service without SLO alerts."
)
CHECK_REASON = (
    "Prometheus refuses a rule file promtool rejects, and with it every SLO of the service."
)
TEST_REASON = (
    "The generated unit tests replay a fast burn, a slow burn and a healthy period: a "
    "failure means the alerts would not fire (or would fire) as the SLO says."
)
MISSING_REASON = (
    "Without promtool the generated rules and their unit tests are not checked, and Prometheus "
    "may refuse them: install it where the checks run."
)
PROMTOOL_MISSING = "promtool-missing"
OUTPUT_LIMIT = 2000


def _spec_finding(error: SpecError) -> Finding:
    return Finding(
        severity=Severity.ERROR,
        rule="slo-spec",
        object=f'SLO "{error.slo}"' if error.slo is not None else error.file,
        source=error.file,
        path=error.path,
        message=str(error),
        reason=SPEC_REASON,
    )


def lint(slo: ResolvedSLO) -> list[Finding]:
    """Warnings for an SLO that generates valid rules that cannot do their job."""
    findings = []

    def warn(rule: str, path: str, message: str, reason: str) -> None:
        findings.append(
            Finding(
                severity=Severity.WARNING,
                rule=rule,
                object=f'SLO "{slo.name}"',
                source=slo.source,
                path=path,
                message=f'{slo.source}: SLO "{slo.name}": {message}',
                reason=reason,
            )
        )

    queries = {
        "sli.events.error_query": slo.error_query,
        "sli.events.total_query": slo.total_query,
        "sli.raw.error_ratio_query": slo.ratio_query,
    }
    for field, query in queries.items():
        if query is not None and not query.uses_window:
            warn(
                "slo-query-window",
                f"$.{field}",
                f"{field} does not use {{{{.window}}}}: every window gets the same ratio",
                "Burn rates compare short and long windows; with one fixed range they are "
                "all equal and the multiwindow alerts lose their meaning.",
            )
    budget = error_budget_ratio(slo)
    for severity, meta in (("page", slo.page), ("ticket", slo.ticket)):
        if meta is None:
            continue
        factors = [slo.windows.burn_factor(w) for w in alert_pairs(slo, page=severity == "page")]
        if min(factors) * budget >= 1:
            warn(
                "slo-alert-unreachable",
                "$.alerting",
                f"the {severity} alert needs an error ratio above "
                f"{go_float(min(factors) * budget)} ({go_float(min(factors))} x the error "
                f"budget {go_float(budget)}): more than 100% errors, so it never fires",
                "With a low objective the burn-rate thresholds exceed 100% errors; raise the "
                "objective or use windows made for it.",
            )
    return findings


def duplicate_alerts(slos: list[ResolvedSLO]) -> list[Finding]:
    """Warn about alert rules of one service that differ only by expression.

    promtool's lint reports them (``duplicate rule(s) found``) without failing, and
    Prometheus loads them; telling them apart by a label keeps Alertmanager routes exact.
    """
    first: dict[tuple[str, str, str, frozenset[tuple[str, str]]], str] = {}
    findings = []
    for slo in slos:
        for severity, meta in (("page", slo.page), ("ticket", slo.ticket)):
            if meta is None:
                continue
            signature = (slo.service, severity, meta.name, frozenset(meta.labels.items()))
            other = first.setdefault(signature, slo.name)
            if other == slo.name:
                continue
            findings.append(
                Finding(
                    severity=Severity.WARNING,
                    rule="slo-duplicate-alert",
                    object=f'SLO "{slo.name}"',
                    source=slo.source,
                    path="$.alerting.name",
                    message=f'{slo.source}: SLO "{slo.name}": the {severity} alert '
                    f'"{meta.name}" has the same name and labels as SLO "{other}"\'s',
                    reason="promtool reports rules that differ only by expression as "
                    "duplicates; a distinct name or label keeps alert routing unambiguous.",
                )
            )
    return findings


def _tail(output: str) -> str:
    return output if len(output) <= OUTPUT_LIMIT else "..." + output[-OUTPUT_LIMIT:]


def _missing_promtool(filename: str, missing: PromtoolNotFoundError) -> Finding:
    return Finding(
        severity=Severity.ERROR,
        rule=PROMTOOL_MISSING,
        object=filename,
        source=filename,
        path="",
        message=f"the rules generated from {filename} and their unit tests were not checked: "
        f"{missing}",
        reason=MISSING_REASON,
    )


def review_slo_file(
    filename: str,
    text: str,
    promtool: Promtool | None,
    options: GenerateOptions | None = None,
) -> list[Finding]:
    """Check one SLO spec file (any supported format); empty when all is good.

    Without ``promtool`` the generated rules are not checked (only the spec is). A promtool
    that is configured but not installed is one ``promtool-missing`` error finding saying
    what to install (the spec's own findings are kept); one that breaks while running
    raises ``PromtoolError``: that is the tool's problem, not the spec's.
    """
    options = options or GenerateOptions()
    generate_options = GenerateOptions(
        period=options.period,
        windows=options.windows,
        extra_labels=options.extra_labels,
        rules=options.rules,
        tests=True,
    )
    try:
        slos = resolve_sources({filename: text}, options)
        outputs = render_outputs(slos, generate_options, [filename])
    except InvalidSpecError as errors:
        return [_spec_finding(error) for error in errors.errors]
    findings = [finding for slo in slos for finding in lint(slo)] + duplicate_alerts(slos)
    if promtool is None:
        return findings
    with tempfile.TemporaryDirectory(prefix="slo-review-") as tmp:
        paths = write_outputs(outputs, Path(tmp))
        for output, path in zip(outputs, paths, strict=True):
            check = promtool.check_rules if output.kind == "rules" else promtool.test_rules
            try:
                result = check(path)
            except PromtoolNotFoundError as missing:
                findings.append(_missing_promtool(filename, missing))
                break
            if result.ok:
                continue
            action = "check" if output.kind == "rules" else "test"
            findings.append(
                Finding(
                    severity=Severity.ERROR,
                    rule=f"promtool-{action}-rules",
                    object=output.name,
                    source=filename,
                    path="",
                    message=f"promtool {action} rules failed on {output.name} (generated from "
                    f"{filename}): {_tail(result.output)}",
                    reason=CHECK_REASON if output.kind == "rules" else TEST_REASON,
                )
            )
    return findings
