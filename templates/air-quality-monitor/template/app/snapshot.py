"""What the pages and the API show, computed once per refresh: the snapshot of the data.

:func:`build_snapshot` assesses the current readings against the WHO guideline (with the
anomaly model's score), forecasts tomorrow per pollutant and builds the charts. It is plain
computation (no I/O), run in a worker thread by the monitor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from .assessment import AnomalyScore, Reading, Verdict, judge
from .chart import Chart, build_chart
from .forecast import Skill
from .settings import Settings
from .timeline import Timeline
from .training import TrainedModels


@dataclasses.dataclass(frozen=True)
class PollutantForecast:
    """Tomorrow's average of one pollutant: the service's model beside the CAMS forecast."""

    pollutant: str
    model: float | None
    method: str | None
    cams: float | None
    skill: Skill | None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Everything the pages and the API show, computed once per refresh."""

    fetched_at: datetime
    timeline: Timeline
    readings: tuple[Reading, ...]
    verdict: Verdict | None
    forecasts: tuple[PollutantForecast, ...]
    charts: tuple[Chart, ...]
    model_version: str | None


def current_readings(timeline: Timeline, pollutants: tuple[str, ...]) -> tuple[Reading, ...]:
    """Return the current 24-hour average of each pollutant, or why it is unavailable."""
    readings = []
    for pollutant in pollutants:
        if pollutant in timeline.data.missing:
            note = "Open-Meteo has no data for it at this place"
            readings.append(Reading(pollutant, None, note=note))
            continue
        value = timeline.window_mean(pollutant)
        note = "" if value is not None else "no recent values from Open-Meteo"
        readings.append(Reading(pollutant, value, timeline.latest(pollutant), note))
    return tuple(readings)


def score_readings(
    models: TrainedModels | None, values: Mapping[str, float]
) -> AnomalyScore | None:
    """Score concentrations with the anomaly model, when it knows every one it needs."""
    anomaly = models.anomaly if models else None
    if anomaly is None or any(name not in values for name in anomaly.features):
        return None
    return anomaly.score(values)


def build_snapshot(
    timeline: Timeline, models: TrainedModels | None, settings: Settings, fetched_at: datetime
) -> Snapshot:
    """Assess the data, forecast tomorrow and build the charts."""
    readings = current_readings(timeline, settings.pollutants)
    values = {r.pollutant: r.value for r in readings if r.value is not None}
    verdict = None
    if values:
        verdict = judge(readings, score_readings(models, values), settings.city)
    forecasts = []
    charts = []
    for pollutant in settings.pollutants:
        forecaster = models.forecasters.get(pollutant) if models else None
        tomorrow = forecaster.predict(timeline) if forecaster else None
        forecasts.append(
            PollutantForecast(
                pollutant,
                tomorrow,
                forecaster.method if forecaster else None,
                timeline.cams_tomorrow(pollutant),
                forecaster.skill if forecaster else None,
            )
        )
        charts.append(build_chart(timeline, pollutant, forecaster, tomorrow))
    return Snapshot(
        fetched_at=fetched_at,
        timeline=timeline,
        readings=readings,
        verdict=verdict,
        forecasts=tuple(forecasts),
        charts=tuple(charts),
        model_version=models.version if models else None,
    )
