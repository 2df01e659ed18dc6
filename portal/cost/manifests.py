"""Estimated monthly cost of rendered manifests: requests x replicas x a price sheet.

The estimate is what the change asks the cluster to reserve (OpenCost allocates by the same
requests), before anything runs: CPU core-hours, memory GiB-hours and GPU-hours over a
730-hour month. Measured cost after deploy comes from Prometheus, elsewhere.

Prices are :class:`portal.cost.model.Prices`, the one price sheet type: OpenCost's defaults,
or an environment's sheet from the GitOps repository (``cost/prices/<env>.yaml``).

An estimate above a ceiling (``PORTAL_COST_MAX_MONTHLY_USD``) is a finding that fails the
check: such a figure comes from a typo or a hostile quantity, never from a real service.
A workload whose requests cannot be read is listed in ``errors``: the check cannot vouch
for the total, so it reports an error rather than a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from portal.cost.model import GIB, HOURS_PER_MONTH, Prices
from portal.cost.quantity import parse_quantity
from portal.integrations.kubernetes import (
    Finding,
    Severity,
    hpa_targets,
    object_ref,
    object_source,
    pod_spec,
)

DEFAULT_MAX_MONTHLY = Decimal(100_000)
_PLAIN_LIMIT = Decimal(10) ** 12  # beyond this, digits stop telling a reviewer anything

SCALED_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})
BATCH_KINDS = frozenset({"Job", "CronJob"})


class CostLine(BaseModel):
    """The estimate for one workload; sizes are per replica, costs for all replicas."""

    object: str
    source: str
    replicas: int
    max_replicas: int
    cpu_cores: Decimal
    memory_gib: Decimal
    gpus: Decimal
    monthly: Decimal
    max_monthly: Decimal
    note: str = ""


class CostEstimate(BaseModel):
    """Monthly estimate of a set of objects, per workload and in total."""

    currency: str
    lines: list[CostLine]
    total: Decimal
    max_total: Decimal
    not_estimated: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)

    def breakdown(self) -> str:
        """Render a plain-text table, amounts rounded to cents."""
        rows = [
            f"{line.object}: {line.replicas} x ({_number(line.cpu_cores)} CPU, "
            f"{_number(line.memory_gib)} GiB"
            + (f", {_number(line.gpus)} GPU" if line.gpus else "")
            + f") = {money(line.monthly)} {self.currency}/month"
            + (f" ({line.note})" if line.note else "")
            for line in self.lines
        ]
        total = f"Total: {money(self.total)} {self.currency}/month"
        if self.max_total != self.total:
            total += f" (up to {money(self.max_total)} at autoscaler maximum)"
        rows.append(total)
        rows.extend(f"Not estimated: {item}" for item in self.not_estimated)
        rows.extend(f"Cannot estimate: {item}" for item in self.errors)
        return "\n".join(rows)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def money(value: Decimal) -> str:
    """Write an amount for people: cents, or three significant digits when astronomical."""
    # Formatting, unlike quantize, never runs out of the context's 28 digits of precision.
    return f"{value:.2f}" if abs(value) < _PLAIN_LIMIT else f"{value:.3g}"


def _number(value: Decimal) -> str:
    if abs(value) >= _PLAIN_LIMIT:
        return f"{value:.3g}"
    return f"{value.quantize(Decimal('0.001')).normalize():f}"


def _container_requests(container: Mapping[str, Any]) -> dict[str, Decimal]:
    resources = _mapping(container.get("resources"))
    # Kubernetes sets a missing request to the limit: a limits-only container reserves it.
    merged = {**_mapping(resources.get("limits")), **_mapping(resources.get("requests"))}
    amounts = {"cpu": Decimal(0), "memory": Decimal(0), "gpu": Decimal(0)}
    for name, quantity in merged.items():
        key = "gpu" if str(name).endswith("/gpu") else str(name)
        if key in amounts:
            amount = parse_quantity(quantity)
            if amount < 0:
                raise ValueError(f"negative {key} quantity {quantity!r}")
            amounts[key] += amount
    return amounts


def pod_requests(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    """Return one pod's requests as the scheduler counts them.

    Keys ``cpu`` (cores), ``memory`` (bytes) and ``gpu``. Init containers run one at a time
    before the others, so the pod reserves the larger of their peak and the running sum.
    """
    running = {"cpu": Decimal(0), "memory": Decimal(0), "gpu": Decimal(0)}
    init_peak = dict(running)
    for key in ("initContainers", "containers"):
        containers = pod.get(key)
        for container in containers if isinstance(containers, list) else []:
            if not isinstance(container, Mapping):
                continue
            amounts = _container_requests(container)
            # A sidecar (init container with restartPolicy Always) keeps running beside the app.
            sidecar = key == "initContainers" and container.get("restartPolicy") == "Always"
            target = running if key == "containers" or sidecar else None
            for resource, amount in amounts.items():
                if target is not None:
                    target[resource] += amount
                else:
                    init_peak[resource] = max(init_peak[resource], amount)
    return {resource: max(running[resource], init_peak[resource]) for resource in running}


def _replicas(
    obj: Mapping[str, Any], hpas: Mapping[tuple[str, str, str], Mapping[str, Any]]
) -> tuple[int, int, str]:
    """(replicas, maximum replicas, note) priced for a workload."""
    metadata, spec = _mapping(obj.get("metadata")), _mapping(obj.get("spec"))
    kind = str(obj.get("kind"))
    key = (str(metadata.get("namespace") or ""), kind, str(metadata.get("name")))
    if kind in SCALED_KINDS and key in hpas:
        minimum = _count(hpas[key].get("minReplicas") or 1, "minReplicas")
        maximum = _count(hpas[key].get("maxReplicas") or minimum, "maxReplicas")
        return minimum, maximum, f"HPA {minimum}-{maximum}"
    if kind in SCALED_KINDS:
        replicas = spec.get("replicas")
        count = 1 if replicas is None else _count(replicas, "replicas")
        return count, count, ""
    if kind == "DaemonSet":
        return 1, 1, "per node"
    return 1, 1, ""


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{what} {value!r} is not a whole number")
    count = int(value)
    if count < 0:
        raise ValueError(f"{what} {value!r} is negative")
    return count


def estimate_monthly_cost(
    objects: Iterable[Mapping[str, Any]], price_sheet: Prices
) -> CostEstimate:
    """Estimate the monthly cost of the workloads among ``objects``.

    Replicas: a Deployment or StatefulSet scaled by an HPA costs its ``minReplicas`` (the
    maximum is reported too), otherwise ``spec.replicas`` or 1. A DaemonSet is priced for one
    node. Jobs and CronJobs run for an unknown time and are listed as not estimated. A
    workload whose requests or replicas cannot be read (a bad or negative quantity) is left
    out of the total and listed in ``errors``.
    """
    objects = list(objects)
    hpas = hpa_targets(objects)
    lines: list[CostLine] = []
    not_estimated: list[str] = []
    errors: list[str] = []
    for obj in objects:
        pod = pod_spec(obj)
        if pod is None:
            continue
        ref = object_ref(obj)
        if obj.get("kind") in BATCH_KINDS:
            not_estimated.append(f"{ref}: runs to completion, for an unknown time")
            continue
        try:
            requests = pod_requests(pod)
            replicas, max_replicas, note = _replicas(obj, hpas)
        except (ValueError, TypeError, ArithmeticError) as error:
            errors.append(f"{ref}: {error}")
            continue
        memory_gib = requests["memory"] / GIB
        hourly = (
            requests["cpu"] * price_sheet.cpu_core_hour
            + memory_gib * price_sheet.memory_gib_hour
            + requests["gpu"] * price_sheet.gpu_hour
        )
        lines.append(
            CostLine(
                object=ref,
                source=object_source(obj),
                replicas=replicas,
                max_replicas=max_replicas,
                cpu_cores=requests["cpu"],
                memory_gib=memory_gib,
                gpus=requests["gpu"],
                monthly=hourly * replicas * HOURS_PER_MONTH,
                max_monthly=hourly * max_replicas * HOURS_PER_MONTH,
                note=note,
            )
        )
    return CostEstimate(
        currency=price_sheet.currency,
        lines=lines,
        total=sum((line.monthly for line in lines), Decimal(0)),
        max_total=sum((line.max_monthly for line in lines), Decimal(0)),
        not_estimated=not_estimated,
        errors=errors,
    )


def ceiling_findings(estimate: CostEstimate, ceiling: Decimal, source: str = "") -> list[Finding]:
    """Return an error finding when the estimate (at autoscaler maximum) exceeds ``ceiling``.

    The ceiling is in the price sheet's currency; ``source`` names the overlay priced.
    """
    if estimate.max_total <= ceiling:
        return []
    figure = f"{money(estimate.total)} {estimate.currency}/month"
    if estimate.max_total != estimate.total:
        figure += f" (up to {money(estimate.max_total)} at autoscaler maximum)"
    biggest = max(estimate.lines, key=lambda line: line.max_monthly)
    return [
        Finding(
            severity=Severity.ERROR,
            rule="cost-ceiling",
            object=biggest.object,
            source=biggest.source or source,
            path="spec.template.spec.containers[].resources",
            message=f"estimated {figure} is above the ceiling of {money(ceiling)} "
            f"{estimate.currency}/month (PORTAL_COST_MAX_MONTHLY_USD); the largest workload "
            f"is {biggest.object} at {money(biggest.max_monthly)}",
            reason="a figure this large comes from a mistyped or hostile quantity",
        )
    ]
