"""OpenCost's ``/allocation`` JSON API: measured cost per allocation over a window.

``OpenCostClient`` asks a real OpenCost (``PORTAL_OPENCOST_URL``) with a bounded timeout
through the standard library's HTTP client; ``FakeAllocationSource`` answers from
allocations given to it, for unit tests. Every way of not getting a usable answer (down,
an HTTP error, not JSON, a field missing or of the wrong type) raises ``OpenCostError``
whose message names the URL or the field, so a page can show it instead of a wrong figure.

``OpenCostCostSource`` is the portal's ``CostSource`` over it: one ``/allocation`` query per
range of days, one step a day, aggregated by cluster, namespace and the pod label
``app.kubernetes.io/name``, each allocation becoming one ``ResourceDay``.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from portal.integrations.cost_metrics import CostSourceError, ResourceDay, Workload

DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a month of per-container allocations fits easily
APP_LABEL = "app.kubernetes.io/name"
DAILY_AGGREGATE = f"cluster,namespace,label:{APP_LABEL}"
# OpenCost names what an aggregate property is missing for ``__unallocated__``, volumes no
# pod mounts ``__unmounted__``, and the cluster's unallocated capacity ``__idle__``.
UNALLOCATED = "__unallocated__"
UNMOUNTED = "__unmounted__"
IDLE = "__idle__"
_GIB = Decimal(2**30)


class OpenCostError(CostSourceError):
    """OpenCost gave no usable answer; the message names the URL or the bad field."""


@dataclass(frozen=True, slots=True)
class OpenCostAllocation:
    """One allocation (a container, or an aggregate such as a namespace) over its window."""

    name: str
    window_start: datetime
    window_end: datetime
    cpu_core_hours: float
    cpu_core_request_average: float
    cpu_core_usage_average: float
    ram_byte_hours: float
    ram_byte_request_average: float
    ram_byte_usage_average: float
    gpu_hours: float
    pv_byte_hours: float
    total_cost: float
    properties: Mapping[str, Any] = field(default_factory=dict)
    minutes: float | None = None  # the minutes it ran in its window; None: not sent
    running_hours: float | None = None  # what some versions send instead of minutes


class AllocationSource(Protocol):
    """Where measured allocations come from (OpenCost today; Prometheus later)."""

    def allocations(
        self, window: str, aggregate: str = "container", step: str | None = None
    ) -> list[dict[str, OpenCostAllocation]]:
        """Return one mapping of name to allocation per step of ``window`` (e.g. ``7d``)."""
        ...


_NUMBERS = {
    "cpu_core_hours": "cpuCoreHours",
    "cpu_core_request_average": "cpuCoreRequestAverage",
    "cpu_core_usage_average": "cpuCoreUsageAverage",
    "ram_byte_hours": "ramByteHours",
    "ram_byte_request_average": "ramByteRequestAverage",
    "ram_byte_usage_average": "ramByteUsageAverage",
    "gpu_hours": "gpuHours",
    "pv_byte_hours": "pvByteHours",
    "total_cost": "totalCost",
}


def _number(raw: Mapping[str, Any], key: str, where: str) -> float:
    if key not in raw:
        raise OpenCostError(f"{where}.{key}: missing")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OpenCostError(f"{where}.{key}: expected a number, got {value!r}")
    # Python's JSON reader accepts NaN and Infinity; no cost or hour count is either.
    if not math.isfinite(value):
        raise OpenCostError(f"{where}.{key}: expected a finite number, got {value!r}")
    return float(value)


def _optional(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    return _number(raw, key, where) if raw.get(key) is not None else None


def _time(raw: Mapping[str, Any], key: str, where: str) -> datetime:
    value = raw.get(key)
    if not isinstance(value, str):
        raise OpenCostError(f"{where}.{key}: expected an RFC 3339 time, got {value!r}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise OpenCostError(f"{where}.{key}: not an RFC 3339 time: {value!r}") from error


def _allocation(name: str, raw: object, where: str) -> OpenCostAllocation:
    if not isinstance(raw, Mapping):
        raise OpenCostError(f"{where}: expected an object")
    window = raw.get("window")
    if not isinstance(window, Mapping):
        raise OpenCostError(f"{where}.window: missing")
    properties = raw.get("properties")
    numbers = {attr: _number(raw, key, where) for attr, key in _NUMBERS.items()}
    return OpenCostAllocation(
        name=name,
        window_start=_time(window, "start", f"{where}.window"),
        window_end=_time(window, "end", f"{where}.window"),
        properties=properties if isinstance(properties, Mapping) else {},
        minutes=_optional(raw, "minutes", where),
        running_hours=_optional(raw, "runningHours", where),
        **numbers,
    )


def parse_allocation_response(payload: object) -> list[dict[str, OpenCostAllocation]]:
    """Turn ``/allocation``'s JSON (``{"code": 200, "data": [{name: {...}}, ...]}``) into sets.

    Fields are named by their path (``data[0]["web/api"].ramByteHours: missing``).
    """
    if not isinstance(payload, Mapping):
        raise OpenCostError("response: expected a JSON object")
    code = payload.get("code")
    if code != 200:
        message = payload.get("message", "")
        raise OpenCostError(f"response.code: {code!r} {message}".rstrip())
    data = payload.get("data")
    if not isinstance(data, list):
        raise OpenCostError("response.data: expected a list of allocation sets")
    sets: list[dict[str, OpenCostAllocation]] = []
    for index, step in enumerate(data):
        if step is None:  # OpenCost sends null for a step with nothing allocated
            sets.append({})
            continue
        if not isinstance(step, Mapping):
            raise OpenCostError(f"data[{index}]: expected an object of allocations")
        sets.append(
            {
                str(name): _allocation(str(name), raw, f"data[{index}][{json.dumps(name)}]")
                for name, raw in step.items()
            }
        )
    return sets


class OpenCostClient:
    """An ``AllocationSource`` that asks OpenCost's HTTP API."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        """Talk to OpenCost at ``url`` (e.g. ``http://opencost.opencost:9003``)."""
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise ValueError(f"PORTAL_OPENCOST_URL: not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def allocations(
        self, window: str, aggregate: str = "container", step: str | None = None
    ) -> list[dict[str, OpenCostAllocation]]:
        """Query ``/allocation`` for ``window`` aggregated by ``aggregate``, per ``step``."""
        parameters = {"window": window, "aggregate": aggregate}
        if step is not None:
            parameters["step"] = step
        query = urllib.parse.urlencode(parameters)
        address = f"{self.url}/allocation?{query}"
        try:
            # The URL is the operator's setting, checked to be http(s) above.
            with urllib.request.urlopen(address, timeout=self.timeout) as response:  # noqa: S310
                body = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            raise OpenCostError(f"OpenCost at {self.url} answered HTTP {error.code}") from error
        except (urllib.error.URLError, OSError) as error:
            raise OpenCostError(f"OpenCost at {self.url} is not reachable: {error}") from error
        if len(body) > MAX_RESPONSE_BYTES:
            raise OpenCostError(f"OpenCost at {self.url}: response over {MAX_RESPONSE_BYTES}")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise OpenCostError(f"OpenCost at {self.url}: response is not JSON: {error}") from error
        return parse_allocation_response(payload)


@dataclass
class FakeAllocationSource:
    """An ``AllocationSource`` answering from given sets; records the windows asked for."""

    sets: Sequence[dict[str, OpenCostAllocation]] = ()
    error: OpenCostError | None = None
    asked: list[tuple[str, str]] = field(default_factory=list)
    steps: list[str | None] = field(default_factory=list)

    def allocations(
        self, window: str, aggregate: str = "container", step: str | None = None
    ) -> list[dict[str, OpenCostAllocation]]:
        """Return the given sets (or raise the given error)."""
        self.asked.append((window, aggregate))
        self.steps.append(step)
        if self.error is not None:
            raise self.error
        return [dict(step) for step in self.sets]


def _decimal(value: float) -> Decimal:
    # Through str: the shortest repr of the float OpenCost sent, not its binary expansion.
    return Decimal(str(value))


def _part(value: str) -> str:
    # Older OpenCost versions name a label aggregate ``<label>=<value>``, newer ones the value
    # alone; label values cannot hold "=", so the last part is the value either way.
    value = value.rpartition("=")[2]
    return "" if value in (UNALLOCATED, UNMOUNTED) else value


def workload_of(allocation: OpenCostAllocation, where: str) -> Workload | None:
    """Read the workload from an allocation named ``cluster/namespace/app`` (None: idle)."""
    parts = allocation.name.split("/")
    if IDLE in parts:
        return None  # capacity nobody requested: not a workload's cost
    if len(parts) != 3:
        raise OpenCostError(
            f"{where}: expected a name cluster/namespace/{APP_LABEL} "
            f"(aggregate={DAILY_AGGREGATE}), got {allocation.name!r}"
        )
    cluster, namespace, service = parts
    return Workload(_part(cluster), _part(namespace), _part(service))


def _hours(allocation: OpenCostAllocation) -> Decimal:
    if allocation.minutes is not None:
        return _decimal(allocation.minutes) / 60
    if allocation.running_hours is not None:
        return _decimal(allocation.running_hours)
    seconds = (allocation.window_end - allocation.window_start).total_seconds()
    return _decimal(seconds) / 3600


def resource_day(allocation: OpenCostAllocation, workload: Workload) -> ResourceDay:
    """Turn one day's allocation of ``workload`` into a ``ResourceDay``.

    Requests and usage are OpenCost's averages over the hours the allocation ran; what is
    held (``max(request, usage)`` per container and hour) is its core- and byte-hours; the
    bill is its ``totalCost``.
    """
    hours = _hours(allocation)
    return ResourceDay(
        workload=workload,
        day=allocation.window_start.date(),
        hours=hours,
        cpu_request_core_hours=_decimal(allocation.cpu_core_request_average) * hours,
        cpu_usage_core_hours=_decimal(allocation.cpu_core_usage_average) * hours,
        cpu_held_core_hours=_decimal(allocation.cpu_core_hours),
        memory_request_gib_hours=_decimal(allocation.ram_byte_request_average) * hours / _GIB,
        memory_usage_gib_hours=_decimal(allocation.ram_byte_usage_average) * hours / _GIB,
        memory_held_gib_hours=_decimal(allocation.ram_byte_hours) / _GIB,
        gpu_hours=_decimal(allocation.gpu_hours),
        pv_gib_hours=_decimal(allocation.pv_byte_hours) / _GIB,
        billed=_decimal(allocation.total_cost),
    )


def daily_window(first: date, last: date) -> str:
    """Write the ``/allocation`` window of whole UTC days ``first`` to ``last`` (RFC 3339)."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    return f"{first.isoformat()}T00:00:00Z,{(last + timedelta(days=1)).isoformat()}T00:00:00Z"


class OpenCostCostSource:
    """The ``CostSource`` that reads OpenCost: one ``/allocation`` query per range of days."""

    name = "OpenCost"

    def __init__(self, allocations: AllocationSource, url: str) -> None:
        """Read days from ``allocations`` (an ``OpenCostClient`` for ``url``, or a fake)."""
        self.allocations = allocations
        self.url = url

    @classmethod
    def at(cls, url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> OpenCostCostSource:
        """Return the source asking the OpenCost API at ``url`` (``PORTAL_OPENCOST_URL``)."""
        client = OpenCostClient(url, timeout)
        return cls(client, client.url)

    def resource_days(self, first: date, last: date) -> list[ResourceDay]:
        """Every workload's ``ResourceDay`` from ``first`` to ``last``, from one query.

        Raises ``OpenCostError`` (a ``CostSourceError``) naming the URL and the window.
        """
        window = daily_window(first, last)
        try:
            sets = self.allocations.allocations(window, DAILY_AGGREGATE, step="1d")
            days = []
            for index, step in enumerate(sets):
                for name, allocation in step.items():
                    where = f"data[{index}][{json.dumps(name)}]"
                    workload = workload_of(allocation, where)
                    if workload is None:
                        continue
                    day = resource_day(allocation, workload)
                    if first <= day.day <= last:  # a step outside the range asked is not ours
                        days.append(day)
        except OpenCostError as error:
            raise OpenCostError(
                f"{self.url}/allocation?window={window}&aggregate={DAILY_AGGREGATE}: {error}"
            ) from error
        return sorted(days, key=lambda day: (day.day, day.workload))
