"""OpenCost's ``/allocation`` JSON API: measured cost per allocation over a window.

``OpenCostClient`` asks a real OpenCost (``PORTAL_OPENCOST_URL``) with a bounded timeout
through the standard library's HTTP client; ``FakeAllocationSource`` answers from
allocations given to it, for unit tests. Every way of not getting a usable answer (down,
an HTTP error, not JSON, a field missing or of the wrong type) raises ``OpenCostError``
whose message names the URL or the field, so a page can show it instead of a wrong figure.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a month of per-container allocations fits easily


class OpenCostError(RuntimeError):
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
    gpu_hours: float
    pv_byte_hours: float
    total_cost: float
    properties: Mapping[str, Any] = field(default_factory=dict)


class AllocationSource(Protocol):
    """Where measured allocations come from (OpenCost today; Prometheus later)."""

    def allocations(
        self, window: str, aggregate: str = "container"
    ) -> list[dict[str, OpenCostAllocation]]:
        """Return one mapping of name to allocation per step of ``window`` (e.g. ``7d``)."""
        ...


_NUMBERS = {
    "cpu_core_hours": "cpuCoreHours",
    "cpu_core_request_average": "cpuCoreRequestAverage",
    "cpu_core_usage_average": "cpuCoreUsageAverage",
    "ram_byte_hours": "ramByteHours",
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
    return float(value)


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
        self, window: str, aggregate: str = "container"
    ) -> list[dict[str, OpenCostAllocation]]:
        """Query ``/allocation`` for ``window`` aggregated by ``aggregate``."""
        query = urllib.parse.urlencode({"window": window, "aggregate": aggregate})
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

    def allocations(
        self, window: str, aggregate: str = "container"
    ) -> list[dict[str, OpenCostAllocation]]:
        """Return the given sets (or raise the given error)."""
        self.asked.append((window, aggregate))
        if self.error is not None:
            raise self.error
        return [dict(step) for step in self.sets]
