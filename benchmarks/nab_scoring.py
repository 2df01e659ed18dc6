"""The AIOps benchmark's labelled data and its scoring: NAB files and NAB's window style.

For ``benchmarks/aiops.py``. ``load_nab`` reads the Numenta Anomaly Benchmark subset vendored
in ``templates/aiops-detector/evaluation/nab/`` (MIT; see its README): each file's points, as
the template's ``app.series`` folds them (repeated timestamps keep their last value, so the
scored points are the detector's), its labelled windows, and where NAB's probationary period
ends (``min(floor(0.15 n), 750)`` points, NAB's ``getProbationPeriod``). ``score`` judges a
detector's anomalous timestamps: a labelled window counts once when any of them falls inside
it (recall = windows detected / windows); those outside every window, merged into events
when at most the gap apart, are false alarms; precision = windows detected / (windows
detected + false-alarm events); F1.

The template's ``app`` package is imported from the template folder by ``template_module``
(which puts that folder on ``sys.path``).
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "templates" / "aiops-detector"
NAB = TEMPLATE / "evaluation" / "nab"

PROBATIONARY_SHARE = 0.15  # NAB's probationaryPercent
PROBATIONARY_CAP = 750  # NAB: 15 % of 5,000 points at most
EVENTS_PER = 4000
FloatArray = NDArray[np.float64]


def template_module(name: str) -> ModuleType:
    """Return the template's ``app.<name>``, imported from the template folder."""
    folder = str(TEMPLATE / "template")
    if folder not in sys.path:
        # Here, not on import: first on sys.path, the template's own `tests` package would
        # shadow the repository's for the caller's later imports.
        sys.path.insert(0, folder)
    return importlib.import_module(f"app.{name}")


@dataclass(frozen=True)
class NabFile:
    """One NAB series (repeated timestamps folded as the detector folds them) and its windows."""

    key: str
    timestamps: FloatArray
    values: FloatArray
    split: float  # the first scored timestamp: the probationary period is before it
    windows: list[tuple[float, float]]

    @property
    def scored(self) -> NDArray[np.bool_]:
        """Return which points are scored (after the probationary period)."""
        return np.asarray(self.timestamps >= self.split)


@dataclass(frozen=True)
class Score:
    """NAB window-style figures of one detector on one file."""

    detected: int
    windows: int
    events: int
    points: int
    outside: int  # anomalous points outside every window

    @property
    def precision(self) -> float:
        """Return windows detected / (windows detected + false-alarm events)."""
        fired = self.detected + self.events
        return self.detected / fired if fired else 0.0

    @property
    def recall(self) -> float:
        """Return windows detected / windows."""
        return self.detected / self.windows if self.windows else 0.0

    @property
    def f1(self) -> float:
        """Return the harmonic mean of precision and recall (0 when nothing was detected)."""
        both = self.precision + self.recall
        return 2 * self.precision * self.recall / both if both else 0.0

    @property
    def events_per_4000(self) -> float:
        """Return the false-alarm events per 4,000 scored points."""
        return self.events * EVENTS_PER / self.points


def utc_seconds(text: str) -> float:
    """Read a NAB time (``2014-03-07 03:41:00[.ffffff]``, no zone) as UTC Unix seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def load_nab() -> list[NabFile]:
    """Read every vendored NAB file and its windows."""
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text(encoding="utf-8"))
    make_series = template_module("series").make_series  # folds as the detector folds
    files = []
    for key, spans in windows.items():
        with (NAB / "data" / key).open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        times = [utc_seconds(row["timestamp"]) for row in rows]
        probationary = min(math.floor(PROBATIONARY_SHARE * len(rows)), PROBATIONARY_CAP)
        series = make_series({}, times, [float(row["value"]) for row in rows])
        files.append(
            NabFile(
                key=key,
                timestamps=series.timestamps,
                values=series.values,
                split=times[probationary],
                windows=[(utc_seconds(start), utc_seconds(end)) for start, end in spans],
            )
        )
    return files


def score(nab: NabFile, anomalous: FloatArray, gap_seconds: float) -> Score:
    """Score anomalous timestamps (all after the probationary period) in NAB's window style."""
    inside = np.zeros(anomalous.size, dtype=bool)
    detected = 0
    for start, end in nab.windows:
        hit = (anomalous >= start) & (anomalous <= end)
        inside |= hit
        detected += bool(hit.any())
    outside = anomalous[~inside]
    events = int(outside.size > 0) + int(np.sum(np.diff(outside) > gap_seconds))
    return Score(detected, len(nab.windows), events, int(nab.scored.sum()), int(outside.size))
