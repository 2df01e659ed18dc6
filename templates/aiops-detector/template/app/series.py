"""One time series as the detector sees it: its labels, sorted timestamps and finite values."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def series_key(labels: Mapping[str, str]) -> str:
    """Return the canonical name of a label set, ``{job="api",le="0.5"}`` (``""`` for none)."""
    if not labels:
        return ""
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclasses.dataclass(frozen=True, eq=False)  # arrays: compared by identity
class Series:
    """Timestamps (Unix seconds, strictly increasing) and their finite values."""

    labels: Mapping[str, str]
    timestamps: FloatArray
    values: FloatArray

    def __post_init__(self) -> None:
        if self.timestamps.shape != self.values.shape or self.timestamps.ndim != 1:
            raise ValueError("timestamps and values must be 1-D arrays of the same length")

    @property
    def key(self) -> str:
        """Return the canonical label set naming this series."""
        return series_key(self.labels)

    def __len__(self) -> int:
        return int(self.timestamps.size)

    def since(self, start: float) -> Series:
        """Return the points at or after ``start``."""
        keep = self.timestamps >= start
        return Series(self.labels, self.timestamps[keep], self.values[keep])


def make_series(labels: Mapping[str, str], timestamps: list[float], values: list[float]) -> Series:
    """Build a series from unsorted points; non-finite values are dropped (they are gaps).

    Repeated timestamps keep the last value given (Prometheus never repeats one; callers
    that must refuse repeats check before).
    """
    times = np.asarray(timestamps, dtype=np.float64)
    data = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(data) & np.isfinite(times)
    times, data = times[finite], data[finite]
    order = np.argsort(times, kind="stable")
    times, data = times[order], data[order]
    if times.size > 1:
        last = np.append(times[1:] != times[:-1], True)
        times, data = times[last], data[last]
    return Series(dict(labels), times, data)
