"""What a check reports, and how one runs: statuses, results, and the runner that times it.

Every review check (:mod:`portal.review.checks`) is a function returning an :class:`Outcome`;
:func:`run_check` turns it into the stored :class:`CheckResult`, so a crashing check is an
``error`` result and never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel

from portal.cost.manifests import CostEstimate
from portal.integrations.kubernetes import Finding, Severity

logger = logging.getLogger(__name__)


class CheckStatus(StrEnum):
    """Outcome of one check; ``error`` means the check itself could not run."""

    PASSED = "passed"
    FAILED = "failed"
    WARNING = "warning"
    ERROR = "error"


class CheckResult(BaseModel):
    """The result of one check, e.g. ``schema (prod)``; ``model_dump(mode="json")`` stores it."""

    name: str
    check: str
    environment: str | None = None
    status: CheckStatus
    summary: str
    findings: list[Finding] = []
    duration_ms: int = 0
    cost: CostEstimate | None = None


def status_of(findings: Iterable[Finding]) -> CheckStatus:
    """Failed on any error, warning on any warning, else passed (notes do not count)."""
    severities = {finding.severity for finding in findings}
    if Severity.ERROR in severities:
        return CheckStatus.FAILED
    if Severity.WARNING in severities:
        return CheckStatus.WARNING
    return CheckStatus.PASSED


@dataclass
class Outcome:
    """What a check found: its one-line summary, findings, and cost estimate if any."""

    summary: str
    findings: list[Finding] = field(default_factory=list)
    cost: CostEstimate | None = None
    could_not_run: bool = False  # the check ran but cannot vouch for its result: error


def run_check(check: str, environment: str | None, body: Callable[[], Outcome]) -> CheckResult:
    """Run one check's ``body`` and time it; a crash is the check's ERROR, never the others'."""
    name = f"{check} ({environment})" if environment else check
    started = time.perf_counter()
    try:
        outcome = body()
    except Exception as error:  # a crashing check is reported; the others still run
        logger.exception("check %s crashed", name)
        return CheckResult(
            name=name,
            check=check,
            environment=environment,
            status=CheckStatus.ERROR,
            summary=f"the check could not run: {type(error).__name__}: {error}",
            duration_ms=round((time.perf_counter() - started) * 1000),
        )
    return CheckResult(
        name=name,
        check=check,
        environment=environment,
        status=CheckStatus.ERROR if outcome.could_not_run else status_of(outcome.findings),
        summary=outcome.summary,
        findings=outcome.findings,
        duration_ms=round((time.perf_counter() - started) * 1000),
        cost=outcome.cost,
    )


def summarise(findings: Sequence[Finding], subject: str) -> str:
    """Return ``subject``'s summary: no problems, or the errors and warnings and their rules."""
    errors = sum(finding.severity == Severity.ERROR for finding in findings)
    warnings = sum(finding.severity == Severity.WARNING for finding in findings)
    if not errors and not warnings:
        return f"{subject}: no problems"
    parts = [f"{errors} error{'s' * (errors != 1)}"] if errors else []
    parts += [f"{warnings} warning{'s' * (warnings != 1)}"] if warnings else []
    rules = sorted({finding.rule for finding in findings if finding.severity != Severity.INFO})
    return f"{subject}: {' and '.join(parts)} ({', '.join(rules)})"
