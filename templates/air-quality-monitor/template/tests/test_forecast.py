"""The day-ahead forecast: training, the persistence fallback and the walk-forward error."""

from __future__ import annotations

import math
from datetime import date

from app.forecast import MIN_TARGET_DAYS, train_forecaster, train_forecasters
from app.timeline import split_timeline

from .conftest import LAHORE, NOW
from .models import recorded_timeline, synthetic_timeline


def test_the_timeline_ends_today_at_the_clock_hour() -> None:
    """The response's second-to-last day is today; the clock gives the hour (10:00 CET)."""
    timeline = synthetic_timeline()
    assert timeline.today == date(2026, 10, 10) and timeline.tomorrow == date(2026, 10, 11)
    now = timeline.now
    assert now is not None and (now.date(), now.hour) == (date(2026, 10, 10), 10)
    assert len(timeline.history_days(9)) == 9
    assert timeline.history_days(9)[-1] == timeline.today


def test_a_ridge_model_is_trained_on_nine_days_of_history() -> None:
    """Enough complete days: a trained model whose forecast is in the city's range."""
    timeline = synthetic_timeline()
    forecaster = train_forecaster(timeline, "pm2_5")
    assert forecaster.method == "ridge" and forecaster.model is not None
    assert forecaster.samples >= 100
    tomorrow = forecaster.predict(timeline)
    recent = timeline.window_mean("pm2_5")
    assert tomorrow is not None and recent is not None
    assert 0.5 * recent < tomorrow < 2 * recent


def test_the_error_is_measured_on_the_last_three_days_walking_forward() -> None:
    """Each backtest day is predicted by a model that never saw it."""
    timeline = synthetic_timeline()
    skill = train_forecaster(timeline, "pm10").skill
    assert [day.day for day in skill.days] == [date(2026, 10, d) for d in (7, 8, 9)]
    assert skill.mae is not None and skill.persistence_mae is not None
    assert math.isfinite(skill.mae) and skill.mae < 10
    for day in skill.days:
        assert day.actual == timeline.daily_mean("pm10", day.day, 18)


def test_a_wave_on_a_backtest_day_is_not_predicted_from_itself() -> None:
    """A 4x wave on 9 October: its backtest prediction comes from the days before it."""
    timeline = synthetic_timeline(wave_day=8)
    (*_, wave) = train_forecaster(timeline, "pm2_5").skill.days
    assert wave.day == date(2026, 10, 9)
    assert wave.actual > 2.5 * wave.predicted


def test_too_little_history_falls_back_to_persistence() -> None:
    """Lahore's 5-day recording has fewer complete days than training needs."""
    timeline = recorded_timeline(LAHORE)
    forecaster = train_forecaster(timeline, "pm2_5")
    assert forecaster.method == "persistence" and forecaster.model is None
    assert MIN_TARGET_DAYS > 1
    assert forecaster.predict(timeline) == timeline.window_mean("pm2_5")


def test_a_pollutant_without_history_gets_no_forecaster() -> None:
    """Nitrogen dioxide is missing from the recording: no model, no crash."""
    forecasters = train_forecasters(recorded_timeline(LAHORE), ["pm2_5", "nitrogen_dioxide"])
    assert list(forecasters) == ["pm2_5"]


def test_cams_forecast_for_tomorrow_is_the_last_day_of_the_response() -> None:
    """The CAMS value is the average of the response's last day, as sent."""
    timeline = recorded_timeline(LAHORE)
    last_day = [
        v
        for t, v in zip(timeline.data.times, timeline.data.values["pm2_5"], strict=True)
        if t.date() == timeline.tomorrow
    ]
    assert len(last_day) == 24
    cams = timeline.cams_tomorrow("pm2_5")
    assert cams is not None and abs(cams - sum(v for v in last_day if v) / 24) < 1e-9


def test_nulls_beyond_the_horizon_make_the_cams_forecast_unavailable() -> None:
    """The 7-day recording's last day is all null: no CAMS value, history still usable."""
    timeline = split_timeline(
        recorded_timeline("open_meteo_air_quality_lahore_7day_nulls.json").data, NOW
    )
    assert timeline.cams_tomorrow("pm2_5") is None
    assert timeline.window_mean("pm2_5") is not None
