"""Error-budget policies (``sre/error-budgets/``): what a service may ship as its budget burns.

A policy names the services it covers (glob patterns) and thresholds on the fraction of the
error budget still left (the lowest of the service's SLOs over their period). Crossing a
``freeze`` threshold blocks the service's changes in review; a ``warn`` threshold informs
the reviewer. When the platform matches several policies, the most specific one (the one
naming the service without wildcards, else the first in file order) applies.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from portal.integrations.kubernetes import Finding, Severity

BudgetLookup = Callable[[str], float | None]
"""Returns a service's error budget left (1.0 = untouched, 0 or less = spent), or None
(also while its SLOs have too little data for a verdict: :mod:`portal.slo.coverage`)."""


class BudgetPolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and field."""


class BudgetAction(StrEnum):
    """What crossing a threshold does to a service's changes."""

    FREEZE = "freeze"
    WARN = "warn"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Strict):
    """Below this fraction of budget left, ``action`` applies."""

    below: float = Field(ge=-1.0, le=1.0)
    action: BudgetAction
    message: str = Field(min_length=1)


class PolicySpec(_Strict):
    """The policy itself."""

    description: str = ""
    services: tuple[str, ...] = ("*",)
    thresholds: tuple[Threshold, ...] = Field(min_length=1)

    @field_validator("thresholds")
    @classmethod
    def _lowest_first(cls, value: tuple[Threshold, ...]) -> tuple[Threshold, ...]:
        return tuple(sorted(value, key=lambda threshold: threshold.below))


class PolicyMeta(_Strict):
    """The policy's name."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class BudgetPolicy(_Strict):
    """One ``ErrorBudgetPolicy`` document."""

    api_version: Literal["portal.platform/v1"] = Field(alias="apiVersion")
    kind: Literal["ErrorBudgetPolicy"]
    metadata: PolicyMeta
    spec: PolicySpec
    source: str = Field(default="", exclude=True)

    def covers(self, service: str) -> bool:
        """Return True when one of the policy's patterns matches ``service``."""
        return any(fnmatch.fnmatchcase(service, pattern) for pattern in self.spec.services)

    def names(self, service: str) -> bool:
        """Return True when the policy names ``service`` without a wildcard."""
        return service in self.spec.services


def load_policies(folder: Path) -> list[BudgetPolicy]:
    """Read every ``*.yaml`` policy of ``folder`` (sorted by file name); none when missing.

    Parsed files are cached by size and modification time: the review check and every
    Component page read the policies, and an edited file applies at once.
    """
    policies: list[BudgetPolicy] = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        stat = path.stat()
        policies.extend(_policies_of(path, stat.st_mtime_ns, stat.st_size))
    return policies


@functools.lru_cache(maxsize=64)
def _policies_of(path: Path, mtime_ns: int, size: int) -> tuple[BudgetPolicy, ...]:
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise BudgetPolicyError(f"{path}: not valid YAML: {exc}") from exc
    policies: list[BudgetPolicy] = []
    for index, document in enumerate(documents):
        if document is None:
            continue
        try:
            policy = BudgetPolicy.model_validate(document)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise BudgetPolicyError(
                f"{path} (document {index + 1}): {where}: {first['msg']}"
            ) from exc
        policies.append(policy.model_copy(update={"source": str(path)}))
    return tuple(policies)


def policy_for(policies: Sequence[BudgetPolicy], service: str) -> BudgetPolicy | None:
    """Return the policy that applies to ``service``: one naming it, else the first covering."""
    named = [policy for policy in policies if policy.names(service)]
    covering = [policy for policy in policies if policy.covers(service)]
    chosen = named or covering
    return chosen[0] if chosen else None


def crossed(policy: BudgetPolicy, remaining: float) -> Threshold | None:
    """Return the lowest threshold ``remaining`` is below, or None."""
    for threshold in policy.spec.thresholds:  # lowest first: the strictest that applies
        if remaining < threshold.below or (threshold.below <= 0 and remaining <= 0):
            return threshold
    return None


def evaluate_budget(
    policies: Sequence[BudgetPolicy], service: str, remaining: float | None
) -> list[Finding]:
    """Return the policy's verdict on a change to ``service`` as review findings."""
    policy = policy_for(policies, service)
    if policy is None:
        return []
    source = policy.source or policy.metadata.name
    if remaining is None:
        message = (
            f"no error-budget data for {service} yet (a new service whose SLOs have less data "
            "than their longest alert window, or no Prometheus)"
        )
        return [_finding(Severity.INFO, policy, service, source, message)]
    threshold = crossed(policy, remaining)
    if threshold is None:
        message = f"{remaining:.0%} of the error budget left: within policy {policy.metadata.name}"
        return [_finding(Severity.INFO, policy, service, source, message)]
    severity = Severity.ERROR if threshold.action is BudgetAction.FREEZE else Severity.WARNING
    message = f"{remaining:.0%} of the error budget left (below {threshold.below:.0%}): " + (
        threshold.message.strip()
    )
    return [_finding(severity, policy, service, source, message)]


def _finding(
    severity: Severity, policy: BudgetPolicy, service: str, source: str, message: str
) -> Finding:
    return Finding(
        severity=severity,
        rule=f"error-budget-{policy.metadata.name}",
        object=f"Component/{service}",
        source=source,
        path="",
        message=message,
        reason=policy.spec.description.strip(),
    )
