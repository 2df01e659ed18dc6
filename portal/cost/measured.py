"""Measured cost: a workload's resource-hours of one day, priced by its cluster's price sheet.

The sources (:mod:`portal.integrations.cost_metrics`) say what was held and used; this
module turns one ``ResourceDay`` into money with OpenCost's rule (what is held, the larger
of request and usage per container and hour, times the price). A day OpenCost already
priced (``billed``) keeps OpenCost's total, so the portal shows the number a FinOps team
sees in OpenCost; its parts are still priced here to show the CPU / memory split.

``gather`` asks every source once for a range of days and decides, per service, which
source its figures come from: the first source (OpenCost before Prometheus) that answered
and has days for it. A source that fails, or answers nonsense (a negative or non-finite
quantity), is kept with its error and its days are not used at all: a partly wrong answer
would give wrong numbers that look right.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal

from portal.cost.model import DEFAULT_PRICES, Prices, PriceSheetError
from portal.integrations.cost_metrics import CostSource, CostSourceError, ResourceDay, Workload


@dataclass(frozen=True, slots=True)
class DayCost:
    """One workload's cost on one UTC day, per resource and in total (exact Decimals).

    The request and usage hours are kept so an efficiency over several days can be weighted
    by hours (a sum of hours over a sum of hours), not averaged from daily ratios.
    """

    workload: Workload
    day: date
    cpu: Decimal
    memory: Decimal
    gpu: Decimal
    pv: Decimal
    total: Decimal
    cpu_efficiency: Decimal | None  # usage / request, None without usage or request
    memory_efficiency: Decimal | None
    cpu_request_core_hours: Decimal = Decimal(0)
    cpu_usage_core_hours: Decimal | None = None
    memory_request_gib_hours: Decimal = Decimal(0)
    memory_usage_gib_hours: Decimal | None = None
    currency: str = DEFAULT_PRICES.currency


def efficiency(usage: Decimal | None, request: Decimal) -> Decimal | None:
    """Usage as a fraction of the request; None when either is unknown or zero."""
    if usage is None or not request:
        return None
    return usage / request


def price_day(day: ResourceDay, prices: Prices = DEFAULT_PRICES) -> DayCost:
    """Price one ``ResourceDay``: held core-hours, GiB-hours, GPU-hours and PV GiB-hours."""
    cpu = day.cpu_held_core_hours * prices.cpu_core_hour
    memory = day.memory_held_gib_hours * prices.memory_gib_hour
    gpu = day.gpu_hours * prices.gpu_hour
    pv = day.pv_gib_hours * prices.storage_gib_hour
    total = cpu + memory + gpu + pv if day.billed is None else day.billed
    return DayCost(
        workload=day.workload,
        day=day.day,
        cpu=cpu,
        memory=memory,
        gpu=gpu,
        pv=pv,
        total=total,
        cpu_efficiency=efficiency(day.cpu_usage_core_hours, day.cpu_request_core_hours),
        memory_efficiency=efficiency(day.memory_usage_gib_hours, day.memory_request_gib_hours),
        cpu_request_core_hours=day.cpu_request_core_hours,
        cpu_usage_core_hours=day.cpu_usage_core_hours,
        memory_request_gib_hours=day.memory_request_gib_hours,
        memory_usage_gib_hours=day.memory_usage_gib_hours,
        currency=prices.currency,
    )


def check_day(day: ResourceDay, first: date, last: date) -> None:
    """Refuse a day no source can truthfully give: outside the range asked, negative, NaN.

    The message names the workload, the day and the field, for the page to show.
    """
    where = f"{day.workload.environment or '-'}/{day.workload.namespace}/{day.workload.service}"
    if not first <= day.day <= last:
        raise ValueError(f"{where}: day {day.day} is outside the range asked ({first}..{last})")
    for item in fields(day):
        value = getattr(day, item.name)
        if isinstance(value, Decimal) and (not value.is_finite() or value < 0):
            raise ValueError(f"{where} on {day.day}: {item.name} is {value}, not a number >= 0")


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One source as asked: its name and URL, how many workload-days it gave, its error."""

    name: str
    url: str
    days: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Measured:
    """Priced days of ``first``..``last`` per service, each service from one source."""

    first: date
    last: date
    statuses: tuple[SourceStatus, ...] = ()
    by_service: Mapping[str, tuple[str, tuple[DayCost, ...]]] = field(default_factory=dict)

    def service_days(self, service: str) -> list[DayCost]:
        """Return the priced days of ``service`` (all its workloads), oldest first."""
        found = self.by_service.get(service)
        return list(found[1]) if found else []

    def source_of(self, service: str) -> str | None:
        """Return the name of the source of ``service``'s days, None when not measured."""
        found = self.by_service.get(service)
        return found[0] if found else None

    @property
    def errors(self) -> list[str]:
        """Every failed source's error, prefixed with its name and URL."""
        return [f"{s.name} ({s.url}): {s.error}" for s in self.statuses if s.error]


def _ask(
    source: CostSource, first: date, last: date, prices: Callable[[str], Prices]
) -> list[DayCost]:
    days = source.resource_days(first, last)
    for day in days:
        check_day(day, first, last)
    return [price_day(day, prices(day.workload.environment)) for day in days]


def gather(
    sources: Sequence[CostSource], first: date, last: date, prices: Callable[[str], Prices]
) -> Measured:
    """Ask each source once for ``first``..``last``; each service takes the first with days.

    ``prices`` gives an environment's price sheet and may raise ``PriceSheetError``: the
    source's days cannot be priced, so the source counts as failed with that message.
    """
    statuses = []
    by_service: dict[str, tuple[str, list[DayCost]]] = {}
    for source in sources:
        try:
            priced = _ask(source, first, last, prices)
        except (CostSourceError, OSError, PriceSheetError, ValueError) as error:
            # OSError and ValueError too: a source that breaks its contract still must not
            # turn the page into a 500; its message is shown instead of its figures.
            statuses.append(SourceStatus(source.name, source.url, error=str(error) or repr(error)))
            continue
        statuses.append(SourceStatus(source.name, source.url, days=len(priced)))
        mine: dict[str, list[DayCost]] = {}
        for day in priced:
            mine.setdefault(day.workload.service, []).append(day)
        for service, days in mine.items():
            by_service.setdefault(service, (source.name, days))
    return Measured(
        first,
        last,
        tuple(statuses),
        {
            service: (name, tuple(sorted(days, key=lambda d: (d.day, d.workload))))
            for service, (name, days) in by_service.items()
        },
    )
