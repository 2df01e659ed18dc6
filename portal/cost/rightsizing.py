"""Right-sizing: lower a container's requests to what it used, plus headroom (pure).

The rule, per container and environment, for CPU and memory separately:

- recommended request = p95 usage over the last 14 days x (1 + headroom, 20% by default),
  rounded **up** to a step a person would write (CPU to 10m, memory to 1Mi), and never
  below a floor (10m CPU, 32Mi memory: a process needs something to start);
- it is proposed only when it lowers the request on ``main`` by at least 10% **and** saves
  at least 0.01 a month: smaller moves are noise that would only churn reviews;
- monthly saving = (old - new request) x replicas (the HPA's ``minReplicas``, else
  ``spec.replicas``, as the estimate prices them) x 730 h x the environment's price.

A container without usage data, without a request on ``main``, or whose usage cannot be
told apart from another workload's, gets no recommendation and the reason why. Requests
are never raised here: a container using more than it asks is a reliability question for
its owners, not a saving.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any, Literal

from portal.cost.model import GIB, HOURS_PER_MONTH, Prices
from portal.cost.quantity import parse_quantity
from portal.integrations.cost_metrics import ContainerUsage
from portal.integrations.kubernetes import hpa_targets, pod_spec

MIB = Decimal(2**20)
WINDOW_DAYS = 14
Resource = Literal["cpu", "memory"]
RESIZABLE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})


@dataclass(frozen=True, slots=True)
class Policy:
    """The rule's numbers (see the module's docstring); the defaults are the portal's."""

    headroom: Decimal = Decimal("0.20")
    cpu_step: Decimal = Decimal("0.01")  # cores: 10m
    memory_step: Decimal = MIB  # bytes: 1Mi
    cpu_floor: Decimal = Decimal("0.01")  # 10m
    memory_floor: Decimal = 32 * MIB
    min_reduction: Decimal = Decimal("0.10")  # of the current request
    min_monthly_saving: Decimal = Decimal("0.01")


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class DeployedContainer:
    """One container of a workload as the manifests on ``main`` build for an environment."""

    environment: str
    namespace: str
    kind: str
    name: str  # the workload's metadata.name
    container: str
    cpu_request_cores: Decimal | None  # None: no request (nor limit) set
    memory_request_bytes: Decimal | None
    replicas: int
    replicas_note: str = ""  # "HPA 2-5": where the replica count comes from


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _request(resources: Mapping[str, Any], name: str) -> Decimal | None:
    # Kubernetes sets a missing request to the limit: a limits-only container reserves it.
    for key in ("requests", "limits"):
        quantity = _mapping(resources.get(key)).get(name)
        if quantity is not None:
            return parse_quantity(quantity)
    return None


def _replicas(obj: Mapping[str, Any], hpas: Mapping[tuple[str, str, str], Any]) -> tuple[int, str]:
    metadata, spec = _mapping(obj.get("metadata")), _mapping(obj.get("spec"))
    kind = str(obj.get("kind"))
    key = (str(metadata.get("namespace") or ""), kind, str(metadata.get("name")))
    if kind == "DaemonSet":
        return 1, "per node"
    if key in hpas:
        hpa = _mapping(hpas[key])
        minimum = int(hpa.get("minReplicas") or 1)
        return minimum, f"HPA minimum {minimum}"
    replicas = spec.get("replicas")
    return (1, "") if replicas is None else (int(replicas), "")


def deployed_containers(
    objects: Iterable[Mapping[str, Any]], environment: str
) -> tuple[list[DeployedContainer], list[str]]:
    """Return the containers of the built ``objects`` and the problems met reading them.

    Deployments, StatefulSets and DaemonSets only (a Job runs for an unknown time); init
    containers are left alone (they run before the others, and briefly).
    """
    objects = list(objects)
    hpas = hpa_targets(objects)
    found: list[DeployedContainer] = []
    problems: list[str] = []
    for obj in objects:
        pod = pod_spec(obj)
        if obj.get("kind") not in RESIZABLE_KINDS or pod is None:
            continue
        metadata = _mapping(obj.get("metadata"))
        name, namespace = str(metadata.get("name")), str(metadata.get("namespace") or "")
        containers = pod.get("containers")
        for container in containers if isinstance(containers, list) else []:
            container = _mapping(container)
            resources = _mapping(container.get("resources"))
            try:
                replicas, note = _replicas(obj, hpas)
                cpu, memory = _request(resources, "cpu"), _request(resources, "memory")
            except (ValueError, TypeError, ArithmeticError) as error:
                problems.append(f"{environment}: {obj.get('kind')}/{name}: {error}")
                continue
            found.append(
                DeployedContainer(
                    environment,
                    namespace,
                    str(obj.get("kind")),
                    name,
                    str(container.get("name")),
                    cpu,
                    memory,
                    replicas,
                    note,
                )
            )
    return found, problems


def round_up(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` up to a whole number of ``step``."""
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def cpu_quantity(cores: Decimal) -> str:
    """Write cores as Kubernetes does for requests: millicores (``70m``)."""
    return f"{(cores * 1000).to_integral_value(rounding=ROUND_CEILING)}m"


def memory_quantity(size: Decimal) -> str:
    """Write bytes as mebibytes (``192Mi``), rounding up to a whole Mi."""
    return f"{(size / MIB).to_integral_value(rounding=ROUND_CEILING)}Mi"


def quantity(resource: Resource, amount: Decimal) -> str:
    """Write an amount of ``resource`` (cores or bytes) as a Kubernetes quantity."""
    return cpu_quantity(amount) if resource == "cpu" else memory_quantity(amount)


@dataclass(frozen=True, slots=True)
class ResourceAdvice:
    """One resource of one container: current request, p95, the new request and its saving.

    ``recommended`` is None when nothing is proposed; ``reason`` says why, either way.
    """

    resource: Resource
    current: Decimal | None
    p95: Decimal | None
    recommended: Decimal | None
    monthly_saving: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A container in one environment: its two resources' advice (or why there is none)."""

    environment: str
    container: str
    deployed: DeployedContainer | None
    cpu: ResourceAdvice | None
    memory: ResourceAdvice | None
    currency: str
    reason: str | None = None  # why the container gets no advice at all

    @property
    def proposed(self) -> bool:
        """True when at least one request would be lowered."""
        return any(advice and advice.recommended is not None for advice in self.advice)

    @property
    def advice(self) -> tuple[ResourceAdvice, ...]:
        """The CPU and memory advice given (none without usage data or manifests)."""
        return tuple(advice for advice in (self.cpu, self.memory) if advice is not None)

    @property
    def monthly_saving(self) -> Decimal:
        """The monthly saving of every lowered request."""
        return sum((advice.monthly_saving for advice in self.advice), Decimal(0))


def _monthly(resource: Resource, amount: Decimal, replicas: int, prices: Prices) -> Decimal:
    """Return what ``amount`` (cores or bytes) per replica costs for a month."""
    if resource == "cpu":
        return amount * replicas * HOURS_PER_MONTH * prices.cpu_core_hour
    # Divide last: bytes x price / 2**30 stays exact, a per-byte price would not.
    return amount * replicas * HOURS_PER_MONTH * prices.memory_gib_hour / GIB


def advise(
    resource: Resource,
    current: Decimal | None,
    p95: Decimal | None,
    replicas: int,
    prices: Prices,
    policy: Policy = DEFAULT_POLICY,
) -> ResourceAdvice:
    """Apply the rule to one resource of one container (amounts in cores or bytes)."""
    label = "CPU" if resource == "cpu" else "memory"
    if p95 is None:
        reason = f"no {label} usage data over the last {WINDOW_DAYS} days"
        return ResourceAdvice(resource, current, None, None, Decimal(0), reason)
    if current is None:
        reason = f"no {label} request on main: nothing to lower"
        return ResourceAdvice(resource, None, p95, None, Decimal(0), reason)
    step, floor = (
        (policy.cpu_step, policy.cpu_floor)
        if resource == "cpu"
        else (policy.memory_step, policy.memory_floor)
    )
    target = max(round_up(p95 * (1 + policy.headroom), step), floor)
    headroom = f"{(policy.headroom * 100).normalize():f}%"
    rule = (
        f"p95 {quantity(resource, p95)} + {headroom} headroom = "
        f"{quantity(resource, target)}, request {quantity(resource, current)}"
    )
    if target >= current:
        return ResourceAdvice(resource, current, p95, None, Decimal(0), f"{rule}: already lean")
    lowered = (current - target) / current
    saving = _monthly(resource, current - target, replicas, prices)
    if lowered < policy.min_reduction:
        percent = f"{(policy.min_reduction * 100).normalize():f}%"
        reason = f"{rule}: lowers it by less than {percent}"
        return ResourceAdvice(resource, current, p95, None, Decimal(0), reason)
    if saving < policy.min_monthly_saving:
        reason = f"{rule}: saves less than {policy.min_monthly_saving} {prices.currency}/month"
        return ResourceAdvice(resource, current, p95, None, Decimal(0), reason)
    return ResourceAdvice(resource, current, p95, target, saving, rule)


def _usage_of(deployed: DeployedContainer, usage: Iterable[ContainerUsage]) -> list[ContainerUsage]:
    return [
        row
        for row in usage
        if row.workload.environment == deployed.environment
        and row.container == deployed.container
        and (
            not deployed.namespace
            or not row.workload.namespace
            or row.workload.namespace == deployed.namespace
        )
    ]


def _highest(values: Iterable[Decimal | None]) -> Decimal | None:
    # Several series for one container (pods in two namespaces): the busiest one decides.
    known = [value for value in values if value is not None]
    return max(known) if known else None


def recommend(
    deployed: Iterable[DeployedContainer],
    usage: Iterable[ContainerUsage],
    prices: Mapping[str, Prices],
    policy: Policy = DEFAULT_POLICY,
) -> list[Recommendation]:
    """Advise every deployed container, and list measured containers ``main`` does not have.

    ``prices`` maps each environment to its price sheet; an environment missing from it
    gets no advice (its sheet could not be read: the page says why elsewhere).
    """
    deployed, usage = list(deployed), list(usage)
    names: dict[tuple[str, str], int] = {}
    for item in deployed:
        names[(item.environment, item.container)] = (
            names.get((item.environment, item.container), 0) + 1
        )
    advice: list[Recommendation] = []
    for item in deployed:
        sheet = prices.get(item.environment)
        currency = sheet.currency if sheet else ""
        matched = _usage_of(item, usage)
        if sheet is None:
            reason = f"no prices for {item.environment}"
        elif names[(item.environment, item.container)] > 1:
            reason = (
                f"several workloads in {item.environment} have a container named "
                f"{item.container}: their usage cannot be told apart"
            )
        elif not matched:
            reason = f"no usage data over the last {WINDOW_DAYS} days"
        else:
            reason = None
        if reason is not None or sheet is None:
            advice.append(
                Recommendation(item.environment, item.container, item, None, None, currency, reason)
            )
            continue
        cpu = advise(
            "cpu",
            item.cpu_request_cores,
            _highest(u.cpu_p95_cores for u in matched),
            item.replicas,
            sheet,
            policy,
        )
        memory = advise(
            "memory",
            item.memory_request_bytes,
            _highest(u.memory_p95_bytes for u in matched),
            item.replicas,
            sheet,
            policy,
        )
        advice.append(Recommendation(item.environment, item.container, item, cpu, memory, currency))
    known = {(item.environment, item.container) for item in deployed}
    for row in sorted(usage, key=lambda u: (u.workload, u.container)):
        if (row.workload.environment, row.container) not in known:
            known.add((row.workload.environment, row.container))
            advice.append(
                Recommendation(
                    row.workload.environment,
                    row.container,
                    None,
                    None,
                    None,
                    "",
                    "measured, but not in the manifests on main: nothing to change there",
                )
            )
    return sorted(advice, key=lambda r: (r.environment, r.container, r.deployed is None))
