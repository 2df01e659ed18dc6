"""The cost benchmark's measured history: services, their series, a Prometheus serving them.

For ``benchmarks/cost.py``: ``services`` makes the fleet (varied requests and usage, one in
five started within the history), ``write_history`` writes its hourly kube-state-metrics and
cAdvisor series as OpenMetrics up to ``NOW``, and ``backfilled`` turns them into TSDB blocks
with ``promtool tsdb create-blocks-from openmetrics`` and starts a real Prometheus on them.
``month_to_date`` is the figure the history implies, worked out by hand, that the benchmark
checks the portal shows.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from portal.cost.model import DEFAULT_PRICES, cents
from portal.cost.refresh import MIN_HISTORY_DAYS
from portal.integrations.prometheus_local import LocalPrometheus

NOW = datetime(2025, 6, 15, 12, tzinfo=UTC)  # the portal's clock: 12 hours into "today"
HISTORY_DAYS = MIN_HISTORY_DAYS + 1  # what one refresh reads: today and the 60 days before
GIB = 2**30
CPU_REQUESTS = (Decimal("0.25"), Decimal("0.5"), Decimal(1), Decimal(2))  # cores
MEMORY_REQUESTS = (1, 2, 4)  # GiB


@dataclass(frozen=True)
class Service:
    """One service's pod: requests, the share of them it uses, the day it started."""

    number: int
    cpu: Decimal  # cores requested
    memory_gib: int
    used: Decimal  # usage / request, CPU and memory alike (under 1: the request is held)
    first_day: int  # days after the history's first day

    @property
    def name(self) -> str:
        """The service, as the pod label and the catalog Component name it."""
        return f"svc-{self.number:03d}"


def services(count: int) -> list[Service]:
    """``count`` services of varied sizes; one in five started within the history."""
    return [
        Service(
            number,
            CPU_REQUESTS[number % len(CPU_REQUESTS)],
            MEMORY_REQUESTS[number % len(MEMORY_REQUESTS)],
            Decimal(number % 8 + 1) / 10,
            (number * 7) % (HISTORY_DAYS - 10) if number % 5 == 4 else 0,
        )
        for number in range(count)
    ]


def history_start() -> int:
    """The first second of the history: midnight, ``HISTORY_DAYS - 1`` days before NOW."""
    today = datetime(NOW.year, NOW.month, NOW.day, tzinfo=UTC)
    return int((today - timedelta(days=HISTORY_DAYS - 1)).timestamp())


def write_history(path: Path, chosen: list[Service]) -> int:
    """Write hourly OpenMetrics series of ``chosen`` up to NOW; return the number of samples.

    Gauges at each hour's midpoint (the source reads them there: ``offset 30m``), the CPU
    counter every 30 minutes (a 1-hour ``rate`` then has two points under either rule of
    Prometheus' window edges).
    """
    end = int(NOW.timestamp())
    samples = 0

    def hours(service: Service, step: int, offset: int, last: int) -> range:
        first = history_start() + service.first_day * 86400
        return range(first + offset, last + 1, step)

    def labels(service: Service, **extra: str) -> str:
        name = service.name
        text = f'cluster="prod",namespace="ns-{name}",pod="{name}-0"'
        return "{" + text + "".join(f',{key}="{value}"' for key, value in extra.items()) + "}"

    with path.open("w", encoding="utf-8") as out:
        out.write("# TYPE kube_pod_labels gauge\n")
        for s in chosen:
            text = labels(s, label_app_kubernetes_io_name=s.name)
            times = hours(s, 3600, 1800, end - 1)
            out.writelines(f"kube_pod_labels{text} 1 {t}\n" for t in times)
            samples += len(times)
        out.write("# TYPE kube_pod_container_resource_requests gauge\n")
        for s in chosen:
            for resource, unit, value in (
                ("cpu", "core", s.cpu),
                ("memory", "byte", s.memory_gib * GIB),
            ):
                text = labels(s, container="app", resource=resource, unit=unit)
                times = hours(s, 3600, 1800, end - 1)
                out.writelines(
                    f"kube_pod_container_resource_requests{text} {value} {t}\n" for t in times
                )
                samples += len(times)
        out.write("# TYPE container_cpu_usage_seconds counter\n")
        for s in chosen:
            text, per_step = labels(s, container="app"), s.cpu * s.used * 1800
            times = hours(s, 1800, 0, end)
            out.writelines(
                f"container_cpu_usage_seconds_total{text} {n * per_step} {t}\n"
                for n, t in enumerate(times)
            )
            samples += len(times)
        out.write("# TYPE container_memory_working_set_bytes gauge\n")
        for s in chosen:
            text, value = labels(s, container="app"), int(s.memory_gib * GIB * s.used)
            times = hours(s, 3600, 1800, end - 1)
            out.writelines(f"container_memory_working_set_bytes{text} {value} {t}\n" for t in times)
            samples += len(times)
        out.write("# EOF\n")
    return samples


def month_to_date(service: Service) -> Decimal:
    """By hand: the request is held (usage is below it) for every hour since the 1st."""
    started = datetime.fromtimestamp(history_start(), UTC).date()
    started += timedelta(days=service.first_day)
    first = max(started, NOW.date().replace(day=1))
    hours = (NOW - datetime(first.year, first.month, first.day, tzinfo=UTC)).total_seconds() / 3600
    per_hour = service.cpu * DEFAULT_PRICES.cpu_core_hour
    per_hour += service.memory_gib * DEFAULT_PRICES.memory_gib_hour
    return cents(Decimal(int(hours)) * per_hour)


@contextmanager
def backfilled(folder: Path, chosen: list[Service]) -> Iterator[tuple[LocalPrometheus, str]]:
    """A Prometheus serving the history of ``chosen``; yields it and a line on the backfill."""
    folder.mkdir(parents=True)
    started = time.perf_counter()
    history = folder / "history.om"
    samples = write_history(history, chosen)
    written = time.perf_counter()
    size = history.stat().st_size
    command = ["promtool", "tsdb", "create-blocks-from", "openmetrics"]
    command += ["--max-block-duration=2000h", "--", str(history), str(folder / "data")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"promtool could not backfill: {done.stderr[-2000:]}")
    history.unlink()
    made = time.perf_counter() - written
    said = (
        f"{samples:,} samples ({size / 1e6:.0f} MB of OpenMetrics) written in "
        f"{written - started:.1f} s, TSDB blocks made by promtool in {made:.1f} s"
    )
    prometheus = LocalPrometheus(folder, retention="400d", scrape_self=False)
    with prometheus:
        yield prometheus, said
