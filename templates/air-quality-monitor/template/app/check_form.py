"""The manual anomaly check: reading and validating the concentrations a person enters."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from .assessment import LABELS, UNIT

# Above these a reading is not plausible (the European AQI's own scale ends there).
PLAUSIBLE_MAX: Mapping[str, float] = {"pm2_5": 800.0, "pm10": 1200.0, "nitrogen_dioxide": 1000.0}


@dataclasses.dataclass(frozen=True)
class CheckInput:
    """What was entered: the raw text, the valid numbers and a message per bad field."""

    raw: Mapping[str, str]
    values: Mapping[str, float]
    errors: Mapping[str, str]

    @property
    def valid(self) -> bool:
        """Tell whether every field holds a usable number."""
        return not self.errors


def _check(pollutant: str, raw: object) -> tuple[float | None, str | None]:
    label = LABELS[pollutant]
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, f"enter the {label} concentration in {UNIT}"
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None, f"{label} must be a number in {UNIT}, e.g. 12.5"
    try:
        value = float(raw.strip().replace(",", ".") if isinstance(raw, str) else raw)
    except ValueError:
        return None, f"{label} must be a number in {UNIT}, e.g. 12.5"
    if not math.isfinite(value):
        return None, f"{label} must be a finite number"
    if value < 0:
        return None, f"{label} cannot be negative"
    if value > PLAUSIBLE_MAX[pollutant]:
        return None, (
            f"{value:g} {UNIT} is not a plausible {label} reading (at most "
            f"{PLAUSIBLE_MAX[pollutant]:g}); check the unit"
        )
    return value, None


def parse_check(submitted: Mapping[str, object], pollutants: Sequence[str]) -> CheckInput:
    """Validate one value per pollutant; every problem gets a message on its field."""
    values: dict[str, float] = {}
    errors: dict[str, str] = {}
    raw: dict[str, str] = {}
    for pollutant in pollutants:
        given = submitted.get(pollutant)
        raw[pollutant] = "" if given is None else str(given)
        value, error = _check(pollutant, given)
        if error is not None:
            errors[pollutant] = error
        elif value is not None:
            values[pollutant] = value
    return CheckInput(raw, values, errors)
