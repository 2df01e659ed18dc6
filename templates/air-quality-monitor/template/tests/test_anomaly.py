"""The IsolationForest anomaly model."""

from __future__ import annotations

import statistics

from app.anomaly import MIN_TRAINING_HOURS, train_anomaly_model
from app.openmeteo import parse_response
from app.timeline import split_timeline

from .conftest import NOW, load_fixture
from .models import POLLUTANTS, synthetic_timeline


def _typical(timeline_values: dict[str, tuple[float | None, ...]]) -> dict[str, float]:
    return {
        name: statistics.median(v for v in values if v is not None)
        for name, values in timeline_values.items()
    }


def test_ordinary_values_are_not_anomalous_and_a_wave_is() -> None:
    """The median hour is ordinary; four times it (a pollution wave) is not."""
    timeline = synthetic_timeline()
    model = train_anomaly_model(timeline, POLLUTANTS, 0.05)
    assert model is not None and model.features == POLLUTANTS
    typical = _typical({name: timeline.observed(name) for name in POLLUTANTS})
    ordinary = model.score(typical)
    assert not ordinary.anomalous and 0 < ordinary.score < ordinary.threshold
    wave = model.score({name: 4 * value for name, value in typical.items()})
    assert wave.anomalous and wave.score > ordinary.score


def test_values_far_beyond_the_training_range_are_anomalous() -> None:
    """PM2.5 = 300 where it never exceeded ~20: flagged, and the reason says why."""
    timeline = synthetic_timeline()
    model = train_anomaly_model(timeline, POLLUTANTS, 0.05)
    assert model is not None
    scored = model.score({"pm2_5": 300.0, "pm10": 20.0, "nitrogen_dioxide": 15.0})
    assert scored.anomalous and scored.beyond_range == ("pm2_5",)


def test_contamination_sets_the_share_of_training_hours_flagged() -> None:
    """A higher contamination flags more of the ordinary hours."""
    timeline = synthetic_timeline()
    strict = train_anomaly_model(timeline, POLLUTANTS, 0.01)
    loose = train_anomaly_model(timeline, POLLUTANTS, 0.3)
    assert strict is not None and loose is not None
    assert loose.score({"pm2_5": 9.0, "pm10": 16.0, "nitrogen_dioxide": 18.0}).threshold < (
        strict.score({"pm2_5": 9.0, "pm10": 16.0, "nitrogen_dioxide": 18.0}).threshold
    )


def test_training_is_deterministic_so_replicas_agree() -> None:
    """Two replicas with the same data give the same score."""
    timeline = synthetic_timeline()
    first = train_anomaly_model(timeline, POLLUTANTS, 0.05)
    second = train_anomaly_model(timeline, POLLUTANTS, 0.05)
    assert first is not None and second is not None
    vector = {"pm2_5": 25.0, "pm10": 30.0, "nitrogen_dioxide": 20.0}
    assert first.score(vector) == second.score(vector)


def test_only_pollutants_with_history_are_features() -> None:
    """Without nitrogen dioxide in the data, the model learns the other two."""
    data = parse_response(load_fixture("open_meteo_air_quality_lahore.json"), POLLUTANTS)
    model = train_anomaly_model(split_timeline(data, NOW), POLLUTANTS, 0.05)
    assert model is not None and model.features == ("pm2_5", "pm10")


def test_no_model_without_a_day_of_history() -> None:
    """All-null data cannot train a model."""
    data = parse_response(load_fixture("all_null_munich.json"), POLLUTANTS)
    assert train_anomaly_model(split_timeline(data, NOW), POLLUTANTS, 0.05) is None
    assert MIN_TRAINING_HOURS == 24
