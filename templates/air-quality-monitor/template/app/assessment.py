"""What the numbers mean: WHO 2021 guideline levels, European AQI bands and the verdict.

Concentrations are 24-hour averages in µg/m³. The verdict is one of three messages:

- "High pollution anomaly": a pollutant is above its WHO guideline *and* the anomaly model
  finds the combination unusual for this city (a pollution wave, not ordinary fluctuation);
- "Elevated": a pollutant is above its WHO guideline, but that is usual for the last days;
- "Clean air": every pollutant is within its WHO guideline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from enum import StrEnum

# WHO global air quality guidelines (2021), 24-hour mean, µg/m³.
WHO_24H_LIMITS: Mapping[str, float] = {"pm2_5": 15.0, "pm10": 45.0, "nitrogen_dioxide": 25.0}
LABELS: Mapping[str, str] = {"pm2_5": "PM2.5", "pm10": "PM10", "nitrogen_dioxide": "NO₂"}
NAMES: Mapping[str, str] = {
    "pm2_5": "fine particles",
    "pm10": "coarse particles",
    "nitrogen_dioxide": "nitrogen dioxide",
}
UNIT = "µg/m³"

# European Air Quality Index as revised by the EEA in 2024 (aligned with the WHO 2021
# guidelines): upper bounds of Good, Fair, Moderate, Poor and Very poor; above: Extremely poor.
EAQI_UPPER_BOUNDS: Mapping[str, tuple[float, ...]] = {
    "pm2_5": (5, 15, 50, 90, 140),
    "pm10": (15, 45, 120, 195, 270),
    "nitrogen_dioxide": (10, 25, 60, 100, 150),
}
BAND_LABELS = ("Good", "Fair", "Moderate", "Poor", "Very poor", "Extremely poor")
BAND_COLOURS = ("#50F0E6", "#50CCAA", "#F0E641", "#FF5050", "#960032", "#7D2181")
BAND_TEXT_COLOURS = ("#0b2e2c", "#0b2e24", "#332f00", "#2b0000", "#ffffff", "#ffffff")


@dataclasses.dataclass(frozen=True)
class Band:
    """One European AQI band."""

    index: int
    label: str
    colour: str
    text_colour: str


def eaqi_band(pollutant: str, value: float) -> Band:
    """Return the European AQI band of a concentration (a bound belongs to the lower band)."""
    index = len(BAND_LABELS) - 1
    for position, upper in enumerate(EAQI_UPPER_BOUNDS[pollutant]):
        if value <= upper:
            index = position
            break
    return Band(index, BAND_LABELS[index], BAND_COLOURS[index], BAND_TEXT_COLOURS[index])


@dataclasses.dataclass(frozen=True)
class Reading:
    """One pollutant now: its 24-hour average (None when unavailable) and what it means."""

    pollutant: str
    value: float | None
    latest: float | None = None
    note: str = ""  # why the value is unavailable

    @property
    def label(self) -> str:
        """Return the pollutant's short name, e.g. PM2.5."""
        return LABELS[self.pollutant]

    @property
    def limit(self) -> float:
        """Return the WHO 24-hour guideline level."""
        return WHO_24H_LIMITS[self.pollutant]

    @property
    def available(self) -> bool:
        """Tell whether there is a value."""
        return self.value is not None

    @property
    def ratio(self) -> float | None:
        """Return the value as a multiple of the WHO guideline."""
        return None if self.value is None else self.value / self.limit

    @property
    def above_limit(self) -> bool:
        """Tell whether the value exceeds the WHO guideline."""
        return self.value is not None and self.value > self.limit

    @property
    def band(self) -> Band | None:
        """Return the European AQI band of the value."""
        return None if self.value is None else eaqi_band(self.pollutant, self.value)


@dataclasses.dataclass(frozen=True)
class AnomalyScore:
    """The anomaly model's opinion of one vector of concentrations."""

    score: float  # 0..1, higher is stranger (IsolationForest's anomaly score)
    threshold: float  # scores above it are anomalous (set by the contamination)
    anomalous: bool
    beyond_range: tuple[str, ...] = ()  # pollutants far above anything seen in training
    features: tuple[str, ...] = ()


class Level(StrEnum):
    """The three verdicts."""

    CLEAN = "clean"
    ELEVATED = "elevated"
    ANOMALY = "anomaly"


TITLES: Mapping[Level, str] = {
    Level.CLEAN: "Clean air",
    Level.ELEVATED: "Elevated",
    Level.ANOMALY: "High pollution anomaly",
}


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One clear message with its reason."""

    level: Level
    reason: str
    readings: tuple[Reading, ...]
    anomaly: AnomalyScore | None = None

    @property
    def title(self) -> str:
        """Return the verdict as people read it."""
        return TITLES[self.level]


def _amount(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def describe(reading: Reading) -> str:
    """Say how a reading compares with its WHO guideline, e.g. "PM2.5 at 31 µg/m³ is 2.1×…"."""
    assert reading.value is not None
    assert reading.ratio is not None
    head = f"{reading.label} at {_amount(reading.value)} {UNIT}"
    limit = f"the WHO 24-hour guideline of {reading.limit:g} {UNIT}"
    if reading.above_limit:
        return f"{head} is {reading.ratio:.1f}× {limit}"
    return f"{head} is {reading.ratio:.0%} of {limit}"


def _score_text(anomaly: AnomalyScore | None) -> str:
    if anomaly is None:
        return "the anomaly model is not trained yet"
    text = f"anomaly score {anomaly.score:.2f} (threshold {anomaly.threshold:.2f})"
    if anomaly.beyond_range:
        names = ", ".join(LABELS[name] for name in anomaly.beyond_range)
        text += f"; {names} far above anything in the last days"
    return text


def judge(readings: Sequence[Reading], anomaly: AnomalyScore | None, city: str = "") -> Verdict:
    """Give the verdict for some readings and the anomaly model's score of them."""
    present = [reading for reading in readings if reading.available]
    if not present:
        raise ValueError("no pollutant has a value")
    above = sorted(
        (reading for reading in present if reading.above_limit),
        key=lambda reading: reading.ratio or 0.0,
        reverse=True,
    )
    score = _score_text(anomaly)
    where = f" for {city}" if city else ""
    if above and anomaly is not None and anomaly.anomalous:
        reason = f"{'; '.join(describe(r) for r in above)}. Unusual{where}: {score}."
        return Verdict(Level.ANOMALY, reason, tuple(readings), anomaly)
    if above:
        usual = f"usual for the last days{where}" if anomaly is not None else "no anomaly check"
        reason = f"{'; '.join(describe(r) for r in above)}. {usual[0].upper()}{usual[1:]}: {score}."
        return Verdict(Level.ELEVATED, reason, tuple(readings), anomaly)
    highest = max(present, key=lambda reading: reading.ratio or 0.0)
    reason = f"Every pollutant is within its WHO guideline; highest: {describe(highest)}."
    if anomaly is not None and anomaly.anomalous:
        reason += f" Unusually clean{where}: {score}."
    else:
        reason += f" {score[0].upper()}{score[1:]}."
    return Verdict(Level.CLEAN, reason, tuple(readings), anomaly)
