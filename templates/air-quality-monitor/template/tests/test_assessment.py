"""WHO guideline levels, European AQI bands and the verdict."""

from __future__ import annotations

import pytest

from app.assessment import (
    WHO_24H_LIMITS,
    AnomalyScore,
    Level,
    Reading,
    eaqi_band,
    judge,
)

NORMAL = AnomalyScore(score=0.45, threshold=0.6, anomalous=False, features=("pm2_5", "pm10"))
STRANGE = AnomalyScore(score=0.72, threshold=0.6, anomalous=True, features=("pm2_5", "pm10"))


def test_who_2021_guideline_levels() -> None:
    """PM2.5 15, PM10 45, NO2 25 µg/m³ (24-hour means)."""
    assert WHO_24H_LIMITS == {"pm2_5": 15.0, "pm10": 45.0, "nitrogen_dioxide": 25.0}


@pytest.mark.parametrize(
    ("pollutant", "value", "band"),
    [
        ("pm2_5", 5.0, "Good"),
        ("pm2_5", 5.1, "Fair"),
        ("pm2_5", 15.0, "Fair"),
        ("pm2_5", 49.9, "Moderate"),
        ("pm2_5", 90.0, "Poor"),
        ("pm2_5", 140.0, "Very poor"),
        ("pm2_5", 300.0, "Extremely poor"),
        ("pm10", 45.0, "Fair"),
        ("pm10", 120.5, "Poor"),
        ("nitrogen_dioxide", 25.0, "Fair"),
        ("nitrogen_dioxide", 61.0, "Poor"),
        ("nitrogen_dioxide", 151.0, "Extremely poor"),
    ],
)
def test_european_aqi_2024_bands(pollutant: str, value: float, band: str) -> None:
    """The 2024 bands, with the EEA's colours."""
    assert eaqi_band(pollutant, value).label == band
    assert eaqi_band("pm2_5", 1.0).colour == "#50F0E6"
    assert eaqi_band("pm2_5", 500.0).colour == "#7D2181"


def test_clean_air_when_every_pollutant_is_within_its_guideline() -> None:
    """The reason names the highest pollutant relative to its limit."""
    readings = [Reading("pm2_5", 12.0), Reading("pm10", 20.0), Reading("nitrogen_dioxide", None)]
    verdict = judge(readings, NORMAL, "Munich")
    assert verdict.level is Level.CLEAN and verdict.title == "Clean air"
    assert "PM2.5 at 12 µg/m³ is 80% of the WHO 24-hour guideline of 15 µg/m³" in verdict.reason


def test_elevated_when_above_the_guideline_but_usual() -> None:
    """Above the WHO level, ordinary for the city: Elevated, with how far above."""
    verdict = judge([Reading("pm2_5", 31.0), Reading("pm10", 30.0)], NORMAL, "Munich")
    assert verdict.level is Level.ELEVATED and verdict.title == "Elevated"
    assert "PM2.5 at 31 µg/m³ is 2.1× the WHO 24-hour guideline of 15 µg/m³" in verdict.reason
    assert "Usual for the last days for Munich" in verdict.reason
    assert "anomaly score 0.45" in verdict.reason


def test_high_pollution_anomaly_needs_both_a_breach_and_an_anomaly() -> None:
    """Unusual and above the guideline: the strongest message, with the score."""
    verdict = judge([Reading("pm2_5", 300.0), Reading("pm10", 20.0)], STRANGE, "Munich")
    assert verdict.level is Level.ANOMALY and verdict.title == "High pollution anomaly"
    assert "PM2.5 at 300 µg/m³ is 20.0×" in verdict.reason
    assert "anomaly score 0.72 (threshold 0.60)" in verdict.reason


def test_an_unusually_clean_day_is_still_clean_air() -> None:
    """An anomaly below every guideline is not a pollution alarm."""
    verdict = judge([Reading("pm2_5", 2.0), Reading("pm10", 4.0)], STRANGE, "Lahore")
    assert verdict.level is Level.CLEAN
    assert "Unusually clean for Lahore" in verdict.reason


def test_without_a_model_the_guideline_still_decides() -> None:
    """No anomaly model yet: the verdict says so instead of guessing."""
    verdict = judge([Reading("pm10", 60.0)], None)
    assert verdict.level is Level.ELEVATED
    assert "not trained yet" in verdict.reason


def test_no_value_at_all_is_an_error() -> None:
    """Judging nothing is a programming error, not a clean bill."""
    with pytest.raises(ValueError, match="no pollutant"):
        judge([Reading("pm10", None)], NORMAL)
