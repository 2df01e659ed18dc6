"""The figures the backfilled history must give, worked from its generating rules.

Per workload and UTC day (resource-hours held, requested and used), per container (p95
usage and the latest requests) and per model (tokens), from the pods of
:mod:`tests.cost.openmetrics_history` hour by hour, as a person would add them up.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from portal.integrations.cost_metrics import ContainerUsage, ResourceDay, TokenCount, Workload
from tests.cost.openmetrics_history import (
    DAY,
    DAYS,
    GAUGE_STEP,
    GIB,
    HISTORY_END,
    HOUR,
    LEAD_DAYS,
    TOKEN_SERIES,
    Pod,
    pods,
)


def _workload(pod: Pod) -> Workload:
    return Workload(pod.cluster, pod.namespace, pod.app or "")


def _running_hours(pod: Pod, day: date) -> list[int]:
    """The hours (0-23) of ``day`` during which ``pod`` ran (pods start and stop on the hour)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return [h for h in range(24) if pod.start <= midnight + HOUR * h < pod.stop]


def expected_resource_days(end: datetime = HISTORY_END) -> list[ResourceDay]:
    """Every workload's figures per day, from the pod specs: OpenCost's rule by hand.

    Held is ``max(request, usage)`` per container and hour; a workload without any usage
    series has usage None. Sorted by day, then workload.
    """
    totals: dict[tuple[date, Workload], dict[str, Decimal]] = {}
    measured: set[tuple[date, Workload]] = set()
    start = end - DAY * (DAYS + LEAD_DAYS)
    for pod in pods(end):
        for n in range(DAYS + LEAD_DAYS):
            day = (start + DAY * n).date()
            hours = _running_hours(pod, day)
            if not hours:
                continue
            key = (day, _workload(pod))
            sums = totals.setdefault(key, dict.fromkeys(_FIELDS, Decimal(0)))
            sums["hours"] += len(hours)
            for hour in hours:
                _add_hour(sums, pod, hour)
            if any(c.cpu is not None for c in pod.containers):
                measured.add(key)
    return [
        _resource_day(day, workload, sums, (day, workload) in measured)
        for (day, workload), sums in sorted(totals.items())
    ]


_FIELDS = ("hours", "cpu_req", "cpu_use", "cpu_held", "mem_req", "mem_use", "mem_held", "gpu", "pv")


def _add_hour(sums: dict[str, Decimal], pod: Pod, hour: int) -> None:
    for container in pod.containers:
        cpu = container.cpu.at(hour) if container.cpu else Decimal(0)
        memory = (container.memory.at(hour) if container.memory else Decimal(0)) / GIB
        memory_request = Decimal(container.memory_request) / GIB
        sums["cpu_req"] += container.cpu_request
        sums["cpu_use"] += cpu
        sums["cpu_held"] += max(container.cpu_request, cpu)
        sums["mem_req"] += memory_request
        sums["mem_use"] += memory
        sums["mem_held"] += max(memory_request, memory)
        sums["gpu"] += container.gpus
    if pod.pvc is not None:
        sums["pv"] += Decimal(pod.pvc[1]) / GIB


def _resource_day(
    day: date, workload: Workload, sums: dict[str, Decimal], measured: bool
) -> ResourceDay:
    return ResourceDay(
        workload=workload,
        day=day,
        hours=sums["hours"],
        cpu_request_core_hours=sums["cpu_req"],
        cpu_usage_core_hours=sums["cpu_use"] if measured else None,
        cpu_held_core_hours=sums["cpu_held"],
        memory_request_gib_hours=sums["mem_req"],
        memory_usage_gib_hours=sums["mem_use"] if measured else None,
        memory_held_gib_hours=sums["mem_held"],
        gpu_hours=sums["gpu"],
        pv_gib_hours=sums["pv"],
    )


def expected_container_usage(end: datetime = HISTORY_END) -> list[ContainerUsage]:
    """The p95 usage and latest requests over the whole history, per container.

    Usage is ``base`` for 18 hours a day and ``peak`` for 6: with a quarter of the points
    at ``peak``, the 95th percentile is ``peak``. The request is the latest pod's. A pod
    without ``kube_pod_labels`` cannot be found by service, so it is not here. Sorted by
    workload, then container.
    """
    found: dict[tuple[Workload, str], ContainerUsage] = {}
    for pod in sorted((pod for pod in pods(end) if pod.pod_labels), key=lambda pod: pod.start):
        for c in pod.containers:
            found[(_workload(pod), c.name)] = ContainerUsage(
                workload=_workload(pod),
                container=c.name,
                cpu_request_cores=c.cpu_request,
                cpu_p95_cores=c.cpu.peak if c.cpu else None,
                memory_request_bytes=Decimal(c.memory_request),
                memory_p95_bytes=c.memory.peak if c.memory else None,
            )
    return [found[key] for key in sorted(found)]


def expected_token_counts(start: datetime, end: datetime) -> list[TokenCount]:
    """Tokens between two sample times (multiples of 5 minutes inside the history)."""
    steps = int((end - start).total_seconds()) // GAUGE_STEP
    counts = []
    for labels, per_step in TOKEN_SERIES:
        service = labels.get("app_kubernetes_io_name") or labels["service"]
        model = labels.get("gen_ai_request_model") or labels["model"]
        kind = labels.get("gen_ai_token_type") or labels["type"]
        workload = Workload("prod", labels["namespace"], service)
        counts.append(TokenCount(workload, model, kind, Decimal(steps * per_step)))
    return sorted(counts, key=lambda c: (c.workload, c.model, c.kind))
