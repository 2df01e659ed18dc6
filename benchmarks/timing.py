"""What every benchmark measures with: a timed loop, nearest-rank percentiles, the machine."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile (p95 of 20 samples is the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def timed(call: Callable[[], Any], runs: int, warm_up: int = 5) -> list[float]:
    """Call ``call`` ``warm_up`` times untimed, then ``runs`` times; return seconds per call."""
    for _ in range(warm_up):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def machine(*details: str) -> str:
    """Describe the machine the figures were taken on, then ``details`` (library versions).

    Architecture, cores, memory (Linux's ``/proc/meminfo``, where there is one), the
    platform and Python's version, each benchmark's own details after them.
    """
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory = f", {total_kib / 1024**2:.0f} GiB RAM"
    parts = [
        f"{platform.machine()}, {os.cpu_count()} cores{memory}",
        platform.platform(),
        f"Python {platform.python_version()}",
        *details,
    ]
    return "; ".join(parts)
