"""The Open-Meteo client against the recorded responses and the API's error answers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime

import httpx
import pytest

from app.openmeteo import (
    AirQualityData,
    OpenMeteoError,
    fetch_air_quality,
    parse_response,
    request_params,
)
from app.settings import Settings

from .conftest import LAHORE, OpenMeteoStub, Reply, fixture_reply, load_fixture


def fetch(settings: Settings, delays: list[float] | None = None) -> AirQualityData:
    """Fetch once with a fresh client, recording the backoff delays instead of sleeping."""
    recorded = [] if delays is None else delays

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    async def run() -> AirQualityData:
        async with httpx.AsyncClient() as client:
            return await fetch_air_quality(client, settings, sleep=sleep)

    return asyncio.run(run())


def test_the_request_asks_for_nine_past_days_and_two_forecast_days(
    stub: OpenMeteoStub, settings: Settings
) -> None:
    """One GET of /v1/air-quality with the city, the pollutants and its time zone."""
    fetch(settings)
    assert stub.paths == ["/v1/air-quality"]
    (query,) = stub.requests
    assert query["past_days"] == ["9"] and query["forecast_days"] == ["2"]
    assert query["hourly"] == ["pm2_5,pm10,nitrogen_dioxide"]
    assert query["timezone"] == [settings.timezone]
    assert query == {key: [value] for key, value in request_params(settings).items()}


def test_recorded_lahore_response_parses_with_nitrogen_dioxide_missing() -> None:
    """ISO times in local time; a requested pollutant absent from the answer is 'missing'."""
    data = parse_response(load_fixture(LAHORE), ["pm2_5", "pm10", "nitrogen_dioxide"])
    assert len(data.times) == 120
    assert data.times[0] == datetime(2026, 10, 8, 0, 0)
    assert data.values["pm2_5"][:2] == (72.9, 69.8)
    assert data.missing == ("nitrogen_dioxide",)
    assert data.series("nitrogen_dioxide") == (None,) * 120
    assert data.timezone == "Asia/Karachi" and data.utc_offset_seconds == 18000


def test_unixtime_responses_become_local_wall_time() -> None:
    """Brno's answer uses timeformat=unixtime; times are shifted by its UTC offset."""
    data = parse_response(load_fixture("air_brno_2026-10-01.json"), ["pm2_5", "pm10"])
    assert data.utc_offset_seconds == 7200
    assert data.times[0] == datetime(2026, 10, 1, 0, 0)  # 1790805600 is 22:00 UTC the day before
    assert data.times[1] - data.times[0] == datetime(2026, 1, 1, 1) - datetime(2026, 1, 1)


def test_nulls_are_no_value_not_an_error() -> None:
    """The 7-day response's last 42 hours are null (beyond the CAMS horizon)."""
    data = parse_response(load_fixture("open_meteo_air_quality_lahore_7day_nulls.json"), ["pm2_5"])
    values = data.values["pm2_5"]
    assert values[-42:] == (None,) * 42
    assert all(value is not None for value in values[:-42])


def test_an_error_body_raises_its_reason() -> None:
    """{"error": true, "reason": ...} surfaces the API's words."""
    with pytest.raises(OpenMeteoError, match="Latitude must be in range of -90 to 90"):
        parse_response(load_fixture("error_400_latitude.json"), ["pm2_5"])


def test_http_400_is_not_retried_and_keeps_the_reason(
    stub: OpenMeteoStub, settings: Settings
) -> None:
    """A rejected request fails at once with the API's reason."""
    stub.serve(fixture_reply("error_400_latitude.json", status=400))
    with pytest.raises(OpenMeteoError) as caught:
        fetch(settings)
    assert caught.value.status == 400 and caught.value.kind == "rejected"
    assert "Latitude must be in range" in caught.value.reason
    assert len(stub.requests) == 1


def test_rate_limit_is_retried_with_backoff_then_succeeds(
    stub: OpenMeteoStub, settings: Settings
) -> None:
    """429 then 503 then the data: two retries, the delays growing, Retry-After honoured."""
    stub.serve(
        fixture_reply("rate_limit_429.json", status=429, **{"Retry-After": "0.5"}),
        Reply(503, b'{"error": true, "reason": "busy"}'),
        fixture_reply(LAHORE),
    )
    delays: list[float] = []
    data = fetch(replace(settings, retry_backoff_seconds=0.1), delays)
    assert len(stub.requests) == 3
    assert delays == [0.5, 0.2]
    assert len(data.times) == 120


def test_rate_limit_that_persists_surfaces_the_reason(
    stub: OpenMeteoStub, settings: Settings
) -> None:
    """After the last attempt the 429's reason is what people read."""
    stub.serve(fixture_reply("rate_limit_429.json", status=429))
    with pytest.raises(OpenMeteoError) as caught:
        fetch(settings)
    assert caught.value.kind == "rate_limited"
    assert caught.value.reason.startswith("Minutely API request limit exceeded")
    assert len(stub.requests) == settings.max_attempts


def test_an_unreachable_api_is_a_network_error(settings: Settings) -> None:
    """Nothing listens on the port: retried, then a clear message."""
    with pytest.raises(OpenMeteoError) as caught:
        fetch(replace(settings, open_meteo_url="http://127.0.0.1:9", max_attempts=2))
    assert caught.value.kind in {"network", "timeout"}


def test_a_body_that_is_not_json_is_invalid(stub: OpenMeteoStub, settings: Settings) -> None:
    """A proxy's HTML page is not mistaken for data."""
    stub.serve(Reply(200, b"<html>gateway</html>"))
    with pytest.raises(OpenMeteoError, match="not JSON"):
        fetch(settings)


def test_mismatched_lengths_are_invalid() -> None:
    """A series that does not match the times is refused, not silently shifted."""
    payload = {"hourly": {"time": ["2026-10-01T00:00", "2026-10-01T01:00"], "pm2_5": [1.0]}}
    with pytest.raises(OpenMeteoError, match="1 values for 2 hours"):
        parse_response(payload, ["pm2_5"])
