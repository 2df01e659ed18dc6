"""Measured resource use per workload and day: the one interface the cost pages read.

A ``CostSource`` answers, for a range of whole UTC days, what each workload held and used
per day (``ResourceDay``). Two real sources implement it: OpenCost's ``/allocation`` API
(:mod:`portal.integrations.opencost`) and Prometheus with kube-state-metrics and cAdvisor
(:mod:`portal.integrations.prometheus_cost`). ``UsageMetrics`` is what only Prometheus can
answer: the p95 usage of one service's containers (right-sizing), LLM token counts and a
counter's increase (the request total of an SLO, for the cost per million requests).

A workload is what the catalog calls a component in one cluster: the cluster (the
environment), the namespace, and the pod label ``app.kubernetes.io/name``. Pods without
that label keep an empty ``service`` so the pages can count them as unattributed instead of
dropping them. Nothing here prices anything: :mod:`portal.cost` applies the price sheets,
except that OpenCost's own total (``billed``) is kept so its figures match OpenCost's.

Every way of not getting an answer raises ``CostSourceError`` with a message naming the
source's URL and the query or field, so a page can show it instead of a wrong number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol


class CostSourceError(RuntimeError):
    """A source gave no usable answer; the message names the URL and the query or field."""


@dataclass(frozen=True, slots=True, order=True)
class Workload:
    """One catalog component in one cluster: environment, namespace and service name."""

    environment: str  # the cluster label's value; "" when the series carry none
    namespace: str
    service: str  # the pod label app.kubernetes.io/name; "" when the pod has none


@dataclass(frozen=True, slots=True)
class ResourceDay:
    """What one workload held and used on one UTC day, summed over its containers.

    ``*_held_*`` is OpenCost's ``max(request, usage)`` taken per container and hour, then
    summed: what is charged. ``*_usage_*`` of None means no usage series was found (the
    request alone is then held). ``billed`` is the source's own total cost when it prices
    (OpenCost), None when :mod:`portal.cost` prices the hours with the price sheet.
    """

    workload: Workload
    day: date
    hours: Decimal  # pod-hours observed, so a workload that ran 6 of 24 hours is visible
    cpu_request_core_hours: Decimal
    cpu_usage_core_hours: Decimal | None
    cpu_held_core_hours: Decimal
    memory_request_gib_hours: Decimal
    memory_usage_gib_hours: Decimal | None
    memory_held_gib_hours: Decimal
    gpu_hours: Decimal = Decimal(0)
    pv_gib_hours: Decimal = Decimal(0)
    billed: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """One container of a service in one environment: its request and its p95 usage."""

    workload: Workload
    container: str
    cpu_request_cores: Decimal | None  # None: no request set
    cpu_p95_cores: Decimal | None  # None: no usage series
    memory_request_bytes: Decimal | None
    memory_p95_bytes: Decimal | None


@dataclass(frozen=True, slots=True)
class TokenCount:
    """LLM tokens a service used over a window, per model and kind (input/output)."""

    workload: Workload
    model: str
    kind: str
    tokens: Decimal


class CostSource(Protocol):
    """Measured resource-hours per workload and day (OpenCost or Prometheus)."""

    name: str  # shown beside every figure: "OpenCost" or "Prometheus"
    url: str

    def resource_days(self, first: date, last: date) -> list[ResourceDay]:
        """Every workload's ``ResourceDay`` for each UTC day from ``first`` to ``last``.

        A fixed number of queries whatever the number of workloads; days a workload did
        not run are absent, not zero.
        """
        ...


class UsageMetrics(Protocol):
    """What Prometheus alone answers: p95 usage, token counts, a counter's increase."""

    url: str

    def container_usage(self, service: str, start: datetime, end: datetime) -> list[ContainerUsage]:
        """Return the p95 CPU and memory usage of ``service``'s containers over ``[start, end]``."""
        ...

    def token_counts(self, start: datetime, end: datetime) -> list[TokenCount]:
        """Return the increase of ``llm_tokens_total`` per workload, model and kind."""
        ...

    def increase(self, expression: str, start: datetime, end: datetime) -> Decimal | None:
        """Return the increase of counter ``expression`` over the range; None when no series."""
        ...


@dataclass
class FakeCostSource:
    """A fake ``CostSource`` for unit tests: answers from given days, records the ranges."""

    days: list[ResourceDay] = field(default_factory=list)
    name: str = "Prometheus"
    url: str = "http://fake-cost-source"
    error: CostSourceError | None = None
    asked: list[tuple[date, date]] = field(default_factory=list)

    def resource_days(self, first: date, last: date) -> list[ResourceDay]:
        """Return the given days inside ``[first, last]`` (or raise the given error)."""
        self.asked.append((first, last))
        if self.error is not None:
            raise self.error
        return [day for day in self.days if first <= day.day <= last]


@dataclass
class FakeUsageMetrics:
    """A fake ``UsageMetrics`` for unit tests: answers from given values."""

    containers: list[ContainerUsage] = field(default_factory=list)
    tokens: list[TokenCount] = field(default_factory=list)
    increases: dict[str, Decimal] = field(default_factory=dict)
    url: str = "http://fake-usage-metrics"
    error: CostSourceError | None = None
    asked: list[str] = field(default_factory=list)

    def _answer(self, what: str) -> None:
        self.asked.append(what)
        if self.error is not None:
            raise self.error

    def container_usage(self, service: str, start: datetime, end: datetime) -> list[ContainerUsage]:
        """Return the given containers of ``service``."""
        self._answer(f"containers {service}")
        return [c for c in self.containers if c.workload.service == service]

    def token_counts(self, start: datetime, end: datetime) -> list[TokenCount]:
        """Return the given token counts."""
        self._answer("tokens")
        return list(self.tokens)

    def increase(self, expression: str, start: datetime, end: datetime) -> Decimal | None:
        """Return the given increase of ``expression``, None when not given."""
        self._answer(f"increase {expression}")
        return self.increases.get(expression)
