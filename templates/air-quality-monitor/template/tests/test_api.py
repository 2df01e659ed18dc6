"""The JSON API, the probes, the cache and the behaviour when Open-Meteo fails."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.main import create_app
from app.model_store import sha256_of
from app.settings import Settings

from .conftest import LAHORE, Clock, OpenMeteoStub, Reply, fixture_reply, load_fixture


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_assessment_of_the_recorded_lahore_data(client: TestClient) -> None:
    """Each pollutant against the WHO guideline; the missing NO2 is shown as unavailable."""
    body = client.get("/api/assessment").json()
    assert body["city"] == "Testville" and body["fresh"] is True
    assert body["timezone"] == "Asia/Karachi" and body["local_time"] == "2026-10-11T14:00:00"
    pollutants = {item["pollutant"]: item for item in body["pollutants"]}
    pm25 = pollutants["pm2_5"]
    assert pm25["available"] and pm25["who_guideline_24h"] == 15.0
    assert pm25["above_who_guideline"] is True and pm25["who_ratio"] > 1
    assert pm25["eaqi_band"]["label"] in {"Moderate", "Poor", "Very poor"}
    no2 = pollutants["nitrogen_dioxide"]
    assert no2["available"] is False and no2["concentration_24h"] is None
    assert "no data" in no2["note"]
    assert body["verdict"]["level"] in {"elevated", "anomaly"}
    assert body["verdict"]["anomaly"]["features"] == ["pm2_5", "pm10"]
    assert body["attribution"]["license"] == "CC BY 4.0"
    assert "CAMS" in body["attribution"]["text"]


def test_history_days_and_their_validation(client: TestClient) -> None:
    """Daily averages ending today; days outside 1..9 are refused."""
    body = client.get("/api/history", params={"days": 9}).json()
    assert [day["date"] for day in body["days"]] == [
        "2026-10-08",
        "2026-10-09",
        "2026-10-10",
        "2026-10-11",
    ]  # the recording starts on 8 October
    assert all(day["nitrogen_dioxide"] is None for day in body["days"])
    assert body["who_guidelines_24h"]["pm10"] == 45.0
    assert len(client.get("/api/history", params={"days": 2}).json()["days"]) == 2
    assert client.get("/api/history", params={"days": 0}).status_code == 422
    assert client.get("/api/history", params={"days": 10}).status_code == 422


def test_forecast_puts_the_model_beside_cams(client: TestClient) -> None:
    """Tomorrow (12 October): the service's model, its error and the CAMS value."""
    body = client.get("/api/forecast").json()
    assert body["date"] == "2026-10-12"
    items = {item["pollutant"]: item for item in body["pollutants"]}
    pm10 = items["pm10"]
    assert pm10["model"]["method"] == "persistence"  # 3 complete days are too few to train
    assert pm10["model"]["value"] > 0 and pm10["cams"]["value"] > 0
    assert len(pm10["model"]["skill"]["days"]) == 2
    assert items["nitrogen_dioxide"]["model"]["value"] is None


@pytest.mark.parametrize(
    ("values", "title"),
    [
        ({"pm2_5": 300, "pm10": 20, "nitrogen_dioxide": 10}, "High pollution anomaly"),
        ({"pm2_5": 5, "pm10": 10, "nitrogen_dioxide": 10}, "Clean air"),
        ({"pm2_5": 60, "pm10": 90, "nitrogen_dioxide": 10}, "Elevated"),
    ],
)
def test_manual_check_api(client: TestClient, values: dict[str, float], title: str) -> None:
    """The model's verdict on values sent as JSON."""
    response = client.post("/api/check", json=values)
    assert response.status_code == 200
    verdict = response.json()["verdict"]
    assert verdict["title"] == title
    assert verdict["anomaly"]["score"] > 0


def test_manual_check_api_names_every_bad_field(client: TestClient) -> None:
    """Negative, absurd, non-numeric and missing values each get a message."""
    response = client.post("/api/check", json={"pm2_5": -3, "pm10": 5000, "nitrogen_dioxide": "x"})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors["pm2_5"] == "PM2.5 cannot be negative"
    assert "not a plausible PM10 reading" in errors["pm10"]
    assert "must be a number" in errors["nitrogen_dioxide"]
    missing = client.post("/api/check", json={"pm2_5": 3}).json()["errors"]
    assert set(missing) == {"pm10", "nitrogen_dioxide"}


def test_model_card_is_served_and_matches_the_file(client: TestClient, settings: Settings) -> None:
    """GET /api/model: the card of the model in use, its digest that of the file.

    Without a model registry it says the model is the local version trained here.
    """
    client.get("/readyz")
    client.get("/")
    card = client.get("/api/model").json()
    registry = card.pop("registry")
    assert card["version"] == "20261011T090000Z"
    artifact = settings.model_dir / card["artifact"]["file"]
    assert card["artifact"]["sha256"] == sha256_of(artifact)
    assert json.loads((settings.model_dir / f"model-{card['version']}.json").read_text()) == card
    for key in ("metrics", "parameters", "training_window", "sklearn_version"):
        assert card[key]
    assert registry == {
        "name": settings.registered_model,
        "version": "20261011T090000Z",
        "pinned": False,
        "source": "local",
        "sha256": sha256_of(artifact),
    }


def test_train_on_demand(client: TestClient, clock: Clock) -> None:
    """POST /train trains a new version and the API uses it."""
    client.get("/")
    clock.advance(120)
    response = client.post("/train")
    assert response.status_code == 200
    assert response.json()["version"] == "20261011T090200Z"
    assert client.get("/api/model").json()["version"] == "20261011T090200Z"
    assert client.get("/api/assessment").json()["model_version"] == "20261011T090200Z"


def test_train_needs_the_token_when_one_is_set(settings: Settings, clock: Clock) -> None:
    """With TRAIN_TOKEN set, only a bearer of it may retrain."""
    app = create_app(replace(settings, train_token="s3cret"), clock=clock)
    with TestClient(app) as client:
        assert client.post("/train").status_code == 401
        headers = {"Authorization": "Bearer s3cret"}
        assert client.post("/train", headers=headers).status_code == 200


def test_ready_once_data_and_a_model_are_loaded(client: TestClient) -> None:
    """Not ready before the first fetch (no background loop here), ready after it."""
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["missing"] == "no data yet"
    assert client.get("/healthz").json() == {"status": "ok"}
    client.get("/api/assessment")
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model_version"]


def test_responses_are_cached_for_the_refresh_interval(
    client: TestClient, stub: OpenMeteoStub, clock: Clock, settings: Settings
) -> None:
    """Many requests, one upstream call, until the refresh interval has passed."""
    for path in ("/", "/api/assessment", "/api/history", "/api/forecast", "/"):
        assert client.get(path).status_code == 200
    assert len(stub.requests) == 1
    clock.advance(settings.refresh_seconds + 1)
    client.get("/api/assessment")
    assert len(stub.requests) == 2


def test_last_good_data_is_kept_when_open_meteo_fails(
    client: TestClient, stub: OpenMeteoStub, clock: Clock, settings: Settings
) -> None:
    """A 503 after good data: the page keeps the data, says how old it is and why."""
    client.get("/")
    stub.serve(Reply(503, b'{"error": true, "reason": "Service temporarily unavailable"}'))
    errors_before = _sample("air_quality_fetch_errors_total", {"kind": "unavailable"})
    clock.advance(settings.refresh_seconds + 60)
    page = client.get("/")
    assert page.status_code == 200
    assert "Data fetched 31 minutes ago" in page.text
    assert "Service temporarily unavailable" in page.text
    body = client.get("/api/assessment").json()
    assert body["last_error"] == "Service temporarily unavailable" and body["fresh"] is True
    assert _sample("air_quality_fetch_errors_total", {"kind": "unavailable"}) == errors_before + 1
    assert len(stub.requests) == settings.max_attempts  # then the failure backoff holds
    clock.advance(settings.stale_after_seconds)
    assert client.get("/api/assessment").json()["fresh"] is False
    assert "out of date" in client.get("/").text


def test_a_rate_limit_before_any_data_is_shown_as_the_api_said(
    client: TestClient, stub: OpenMeteoStub
) -> None:
    """No data at all: 503 with Open-Meteo's own reason on the page and in the API."""
    stub.serve(fixture_reply("rate_limit_429.json", status=429))
    page = client.get("/")
    assert page.status_code == 503
    assert "Minutely API request limit exceeded" in page.text
    body = client.get("/api/assessment").json()
    assert body == {
        "error": True,
        "reason": "Minutely API request limit exceeded. Please try again in one minute.",
    }
    assert client.get("/readyz").status_code == 503


def test_all_null_data_is_unavailable_not_a_crash(client: TestClient, stub: OpenMeteoStub) -> None:
    """Every value null: each pollutant unavailable, no verdict, no model, not ready."""
    stub.serve(fixture_reply("all_null_munich.json"))
    page = client.get("/")
    assert page.status_code == 200 and "nothing to judge" in page.text
    body = client.get("/api/assessment").json()
    assert body["verdict"] is None
    assert all(not item["available"] for item in body["pollutants"])
    assert client.get("/readyz").json()["missing"] == "no model yet"
    assert client.get("/api/model").status_code == 503
    assert client.post("/train").status_code == 503


def test_a_stored_model_is_reused_after_a_restart(settings: Settings, clock: Clock) -> None:
    """A new process loads the newest stored version instead of training at once."""
    with TestClient(create_app(settings, clock=clock)) as first:
        version = first.get("/api/assessment").json()["model_version"]
    clock.advance(60)
    with TestClient(create_app(settings, clock=clock)) as second:
        assert second.get("/api/model").json()["version"] == version
        assert second.get("/api/assessment").json()["model_version"] == version
    assert sorted(p.name for p in Path(settings.model_dir).glob("*.json")) == [
        f"model-{version}.json"
    ]


def test_metrics_expose_concentrations_scores_and_requests(client: TestClient) -> None:
    """/metrics: what the dashboards and both SLOs read."""
    client.get("/api/assessment")
    client.post("/api/check", json={"pm2_5": 300, "pm10": 20, "nitrogen_dioxide": 10})
    text = client.get("/metrics").text
    assert 'air_quality_concentration_ugm3{pollutant="pm2_5"}' in text
    assert 'air_quality_concentration_ugm3{pollutant="nitrogen_dioxide"}' not in text
    assert "air_quality_anomaly_score " in text
    assert 'air_quality_verdict{verdict="elevated"}' in text
    assert "air_quality_data_age_seconds" in text
    assert 'air_quality_manual_checks_total{verdict="anomaly"}' in text
    assert 'http_requests_total{code="200",method="GET",route="/api/assessment"}' in text
    assert 'route="/metrics"' not in text
    assert load_fixture(LAHORE)  # the data the gauges came from


def test_freshness_checks_count_fresh_and_stale(client: TestClient, clock: Clock) -> None:
    """The data-freshness SLO's events."""
    monitor = client.app.state.monitor  # type: ignore[attr-defined]
    stale_before = _sample("air_quality_freshness_checks_total", {"fresh": "false"})
    monitor.record_freshness()  # no data yet: stale
    client.get("/")
    fresh_before = _sample("air_quality_freshness_checks_total", {"fresh": "true"})
    monitor.record_freshness()
    assert _sample("air_quality_freshness_checks_total", {"fresh": "false"}) == stale_before + 1
    assert _sample("air_quality_freshness_checks_total", {"fresh": "true"}) == fresh_before + 1


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_background_loop_loads_data_and_retrains_on_schedule(
    settings: Settings, clock: Clock, stub: OpenMeteoStub
) -> None:
    """Ready without any request; a new model version once the retraining interval passes."""
    looping = replace(settings, background_refresh=True, refresh_seconds=0.05)
    with TestClient(create_app(looping, clock=clock)) as client:
        _wait_for(lambda: client.get("/readyz").status_code == 200)
        first = client.get("/api/model").json()["version"]
        clock.advance(settings.retrain_seconds + 1)
        _wait_for(lambda: client.get("/api/model").json()["version"] != first)
        assert len(stub.requests) >= 2
