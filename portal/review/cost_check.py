"""The review's cost check: a change's monthly estimate, and its delta against ``main``.

Each environment's overlay, once built, is priced with that environment's price sheet read
from the change's own tree (``cost/prices/<env>.yaml``): a sheet that cannot be used makes
the check an error naming its file and line, never a silent fall back to default prices.

The delta compares with the service as ``main`` had it when the change was made (the
change commit's first parent): the same overlay is built there with kustomize and priced
with the same sheet, so the delta is what the change's manifests do to the bill, not a
price move. It is on the summary ("estimated 120.00 USD/month (-45.00 vs main)", "+X vs
main (new)" for a service or environment main does not have) and, per workload whose
replicas or requests changed, in an INFO finding. When main's side cannot be priced the
summary says why instead of a delta: a wrong figure would be worse than none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from portal.cost.manifests import (
    CostEstimate,
    CostLine,
    ceiling_findings,
    estimate_monthly_cost,
    money,
)
from portal.cost.model import (
    PRICES_DIR,
    Prices,
    PriceSheetError,
    cents,
    environment_prices,
    price_sheet_path,
)
from portal.integrations.gitops_clone import GitOpsClone
from portal.integrations.kubernetes import (
    Finding,
    KubernetesToolError,
    Severity,
    kustomize_build,
)

PricesOf = Callable[[str], Prices]
"""An environment's prices; raises ``PriceSheetError`` naming file:line for a bad sheet."""


@dataclass(frozen=True)
class MainService:
    """The service's folder as ``main`` had it at the change's base; None: not there yet."""

    commit: str
    service_dir: Path | None


@dataclass
class CostOutcome:
    """What the cost check found: its summary and findings, the estimate, whether it ran."""

    summary: str
    findings: list[Finding]
    estimate: CostEstimate | None = None
    could_not_run: bool = False


@dataclass(frozen=True)
class _MainSide:
    estimate: CostEstimate | None = None  # None with no problem: new on main
    problem: str = ""


def tree_price_sheets(repo: GitOpsClone, commit: str) -> PricesOf:
    """Read each environment's price sheet from ``commit`` (lazily, when the check runs).

    Lazily, so that an unreadable tree fails the cost check alone, as an error.
    """

    def prices(environment: str) -> Prices:
        try:
            present = set(repo.list_files(commit, PRICES_DIR))
        except (OSError, RuntimeError) as error:  # GitError is a RuntimeError
            message = f"{PRICES_DIR}: cannot be read at {commit[:12]}: {error}"
            raise PriceSheetError(message) from error
        return environment_prices(
            environment, lambda path: repo.read_file(commit, path) if path in present else None
        )

    return prices


def export_main_service(repo: GitOpsClone, base: str, service: str, dest: Path) -> MainService:
    """Write ``services/<service>`` as commit ``base`` has it under ``dest``, if it has it."""
    folder = f"services/{service}"
    if not repo.list_files(base, folder):
        return MainService(base, None)
    repo.export_tree(base, dest, [folder])
    return MainService(base, dest / folder)


def _main_side(
    main: MainService, environment: str, kubectl: Path | None, prices: Prices
) -> _MainSide:
    overlay = f"deploy/overlays/{environment}"
    if main.service_dir is None or not (main.service_dir / overlay).is_dir():
        return _MainSide()
    try:
        objects = kustomize_build(
            main.service_dir / overlay, relative_to=main.service_dir, kubectl=kubectl
        )
    except KubernetesToolError as error:  # KubectlNotFoundError included
        return _MainSide(problem=f"no delta: {overlay} does not build on main ({error})")
    estimate = estimate_monthly_cost(objects, prices)
    if estimate.errors:
        return _MainSide(
            problem="no delta: main cannot be estimated: " + "; ".join(estimate.errors)
        )
    return _MainSide(estimate)


def signed(amount: Decimal) -> str:
    """Write a delta in cents with its sign: ``-45.00``, ``+14.63``; never ``-0.00``."""
    rounded = cents(amount)
    return "+0.00" if rounded == 0 else f"{rounded:+.2f}"


def _size(line: CostLine) -> str:
    size = f"{line.cpu_cores.normalize():f} CPU, {line.memory_gib.normalize():f} GiB"
    return size + (f", {line.gpus.normalize():f} GPU" if line.gpus else "")


def _workload_deltas(change: CostEstimate, main: CostEstimate) -> list[Finding]:
    """One INFO finding per workload whose replicas or requests differ from main's."""
    currency = change.currency
    before = {line.object: line for line in main.lines}
    after = {line.object: line for line in change.lines}
    findings = []
    for ref, line in after.items():
        old = before.get(ref)
        if old is None:
            message = f"new workload: {line.replicas} x ({_size(line)})"
        elif (old.replicas, old.max_replicas, _size(old)) == (
            line.replicas,
            line.max_replicas,
            _size(line),
        ):
            continue
        else:
            message = (
                f"{old.replicas} x ({_size(old)}) -> {line.replicas} x ({_size(line)}): "
                f"{money(old.monthly)} -> {money(line.monthly)} {currency}/month"
            )
        delta = line.monthly - (old.monthly if old else Decimal(0))
        findings.append(_note(line, f"{message}, {signed(delta)} {currency}/month vs main"))
    for ref, old in before.items():
        if ref not in after:
            message = f"removed: {signed(-old.monthly)} {currency}/month vs main"
            findings.append(_note(old, message))
    return findings


def _note(line: CostLine, message: str) -> Finding:
    return Finding(
        severity=Severity.INFO,
        rule="cost-delta",
        object=line.object,
        source=line.source,
        path="spec.template.spec.containers[].resources",
        message=message,
    )


def cost_outcome(
    objects: list[dict[str, Any]],
    environment: str,
    price_sheets: PricesOf,
    ceiling: Decimal,
    main: MainService | None = None,
    kubectl: Path | None = None,
) -> CostOutcome:
    """Price an environment's built ``objects``; with ``main``, say the delta against it."""
    try:
        prices = price_sheets(environment)
    except PriceSheetError as error:
        sheet = price_sheet_path(environment)
        problem = Finding(
            severity=Severity.ERROR,
            rule="price-sheet",
            object=sheet,
            source=sheet,
            path="",
            message=str(error),
            reason="a price sheet that cannot be read would price the change wrongly",
        )
        return CostOutcome(f"cannot price {environment}: {error}", [problem], could_not_run=True)
    estimate = estimate_monthly_cost(objects, prices)
    currency = estimate.currency
    if estimate.errors:
        summary = "cannot estimate the cost of " + "; ".join(estimate.errors)
        return CostOutcome(summary, [], estimate, could_not_run=True)
    summary = f"estimated {money(estimate.total)} {currency}/month"
    deltas: list[Finding] = []
    if main is not None:
        side = _main_side(main, environment, kubectl, prices)
        if side.problem:
            summary += f" ({side.problem})"
        elif side.estimate is None:
            summary += f" ({signed(estimate.total)} vs main (new))"
        else:
            summary += f" ({signed(estimate.total - side.estimate.total)} vs main)"
            deltas = _workload_deltas(estimate, side.estimate)
    if estimate.max_total != estimate.total:
        summary += f" (up to {money(estimate.max_total)} at autoscaler maximum)"
    if estimate.max_total > ceiling:
        summary += f", above the ceiling of {money(ceiling)} {currency}/month"
    notes = [
        Finding(
            severity=Severity.INFO,
            rule="cost",
            object=line.object,
            source=line.source,
            path="",
            message=f"{line.replicas} replica(s): {line.monthly:.2f} {currency}/month"
            + (f" ({line.note})" if line.note else ""),
        )
        for line in estimate.lines
    ]
    source = f"deploy/overlays/{environment}"
    findings = ceiling_findings(estimate, ceiling, source) + notes + deltas
    return CostOutcome(summary, findings, estimate)
