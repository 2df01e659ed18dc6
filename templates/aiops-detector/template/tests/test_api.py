"""The HTTP API: train then detect (inline and from Prometheus), every refusal naming its field."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_client import REGISTRY

from app.detector import CONTEXT_STEPS, MIN_TRAINING_POINTS
from app.main import create_app
from app.prometheus import prometheus_message
from app.settings import Settings

from .conftest import PrometheusStub, Reply
from .synthetic import START, STEP, Anomaly, level, points, series, values_at

QUERY = 'sum by (pod) (rate(http_requests_total{job="checkout"}[5m]))'
LATER = START + timedelta(days=10)
BAD_PROMQL = {
    "status": "error",
    "errorType": "bad_data",
    "error": "invalid parameter \"query\": 1:10: parse error: unexpected right parenthesis ')'",
}


def _errors(response: Any) -> dict[str, str]:
    return {item["field"]: item["message"] for item in response.json()["errors"]}


def _train_inline(client: TestClient, name: str = "cpu") -> dict[str, Any]:
    response = client.post("/train", json={"series": {name: points(series(8, seed=31))}})
    assert response.status_code == 200, response.text
    (model,) = response.json()["models"]
    return dict(model)


def test_train_then_detect_inline(client: TestClient) -> None:
    """The model of a name scores that name's new points: one window around the spike."""
    model = _train_inline(client)
    assert model["source"] == {"kind": "series", "name": "cpu"} and model["skipped_series"] == []
    card = model["card"]
    assert (
        card["training_window"]["points"] == 8 * 288
        and card["threshold"]["false_alarm_rate"] == 0.001
    )
    assert len(card["artifact"]["sha256"]) == 64
    fresh = series(2, seed=32, start=LATER, anomalies=[Anomaly(300, 4, 70.0)])
    response = client.post("/detect", json={"series": {"cpu": points(fresh)}})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["model_version"] == model["model_version"]
    (scored,) = result["series"]
    assert scored["points_scored"] == len(fresh)
    spike = [w for w in scored["windows"] if w["start"] == "2026-03-13T01:00:00Z"]
    assert len(spike) == 1, scored["windows"]
    assert spike[0]["severity"] == "critical" and spike[0]["detector"] in ("both", "seasonal")
    assert spike[0]["peak_score"] >= 2
    assert {"timestamp", "value", "score", "detector", "severity"} <= set(scored["anomalies"][0])
    cards = client.get("/api/models").json()["models"]
    assert [c["source"] for c in cards] == [{"kind": "series", "name": "cpu"}]
    assert client.get("/api").json()["models"] == 1


def test_detect_with_an_untrained_name_or_query_is_a_404_naming_it(client: TestClient) -> None:
    """Nothing is guessed: the caller is told to train first."""
    response = client.post("/detect", json={"series": {"memory": points(series(1))}})
    assert response.status_code == 404
    assert "POST /train first" in _errors(response)["series.memory"]
    end = LATER.isoformat()
    response = client.post(
        "/detect", json={"queries": [QUERY], "start": START.isoformat(), "end": end}
    )
    assert response.status_code == 404 and "queries[0]" in _errors(response)


def _long_series(count: int) -> list[dict[str, object]]:
    return points(series(count * STEP / 86400))


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {
                "queries": [QUERY],
                "start": "2026-03-10T00:00:00Z",
                "end": "2026-03-02T00:00:00Z",
                "step": 300,
            },
            "start",
            "must be before end",
        ),
        (
            {
                "queries": [QUERY],
                "start": "2026-01-01T00:00:00Z",
                "end": "2026-03-02T00:00:00Z",
                "step": 3600,
            },
            "start",
            "at most 35 days",
        ),
        (
            {
                "queries": [QUERY],
                "start": "2026-03-01T00:00:00Z",
                "end": "2026-03-10T00:00:00Z",
                "step": "30s",
            },
            "step",
            "at most 11,000",
        ),
        (
            {
                "queries": [QUERY],
                "start": "2026-03-01T00:00:00Z",
                "end": "2026-03-02T00:00:00Z",
                "step": 3600,
            },
            "step",
            f"at least {MIN_TRAINING_POINTS}",
        ),
        (
            {"queries": [QUERY], "start": "2026-03-01T00:00:00Z", "end": "2026-03-10T00:00:00Z"},
            "step",
            "required",
        ),
        ({"queries": [QUERY], "end": "2026-03-10T00:00:00Z", "step": 300}, "start", "required"),
        (
            {
                "queries": [QUERY],
                "start": "2026-03-01T00:00:00Z",
                "end": "2026-03-10T00:00:00Z",
                "step": "5 minutes",
            },
            "step",
            "Prometheus duration",
        ),
        (
            {
                "queries": [QUERY, QUERY],
                "start": "2026-03-01T00:00:00Z",
                "end": "2026-03-10T00:00:00Z",
                "step": 300,
            },
            "queries[1]",
            "repeats queries[0]",
        ),
        (
            {
                "queries": [""],
                "start": "2026-03-01T00:00:00Z",
                "end": "2026-03-10T00:00:00Z",
                "step": 300,
            },
            "queries[0]",
            "at least 1 character",
        ),
        (
            {
                "queries": [],
                "start": "2026-03-01T00:00:00Z",
                "end": "2026-03-10T00:00:00Z",
                "step": 300,
            },
            "queries",
            "at least one query",
        ),
        ({}, "queries", "queries (read from Prometheus) or inline series"),
        ({"queries": [QUERY], "series": {"cpu": []}}, "series", "not both"),
        ({"series": {}}, "series", "at least one series"),
        ({"series": {"cpu": []}}, "series.cpu", "empty series"),
        (
            {"series": {"cpu": [{"timestamp": "2026-03-02T00:00:00Z", "value": "NaN"}]}},
            "series.cpu[0].value",
            "finite number",
        ),
        (
            {"series": {"cpu": [{"timestamp": "yesterday", "value": 1}]}},
            "series.cpu[0].timestamp",
            "datetime",
        ),
        (
            {"series": {"cpu": [{"timestamp": "2026-03-02T00:00:00Z", "value": 1, "unit": "s"}]}},
            "series.cpu[0].unit",
            "Extra inputs",
        ),
        (
            {"series": {"cpu": [{"timestamp": "2026-03-02T00:00:00Z", "value": 1}] * 2}},
            "series.cpu[1].timestamp",
            "repeats the timestamp of series.cpu[0]",
        ),
        (
            {"series": {"cpu": [{"timestamp": "2026-03-02T00:00:00Z", "value": 1}]}},
            "series.cpu",
            f"needs at least {MIN_TRAINING_POINTS}",
        ),
        ({"series": {"cpu": _long_series(11_001)}}, "series.cpu", "at most 11,000"),
        ({"series": {"cpu": _long_series(300)}, "step": 60}, "step", "applies to queries"),
        (
            {"series": {"cpu": _long_series(300)}, "false_alarm_rate": 0.5},
            "false_alarm_rate",
            "less than or equal to 0.1",
        ),
        ({"series": {"cpu": _long_series(300)}, "window": "7d"}, "window", "Extra inputs"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else "",
)
def test_bad_training_requests_are_refused_naming_the_field(
    client: TestClient, prometheus: PrometheusStub, body: dict[str, Any], field: str, message: str
) -> None:
    """A 422 whose error names the field; Prometheus is never asked."""
    response = client.post("/train", json=body)
    assert response.status_code == 422, response.text
    errors = _errors(response)
    assert field in errors, errors
    assert message in errors[field]
    assert prometheus.requests == []


def test_points_without_enough_history_before_them_are_refused(client: TestClient) -> None:
    """A burst of 100 points, then 100 a second apart: too little history to learn from.

    The step is a second (the median spacing), and only the last 6 points have 95 seconds
    of history behind them.
    """
    burst = 1772409600.0 + 0.01 * np.arange(100)
    times = np.concatenate((burst, burst[-1] + 1.0 + np.arange(100)))
    body = [{"timestamp": float(t), "value": float(i % 7)} for i, t in enumerate(times)]
    response = client.post("/train", json={"series": {"bunched": body}})
    assert response.status_code == 422, response.text
    assert "only 6 points have 95 steps (95s) of history" in _errors(response)["series.bunched"]


def test_a_nan_literal_in_the_json_is_refused_naming_the_point(client: TestClient) -> None:
    """JSON has no NaN, but Python's parser reads one: the value is still refused."""
    body = '{"series": {"cpu": [{"timestamp": 1772409600, "value": NaN}]}}'
    response = client.post("/train", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "finite" in _errors(response)["series.cpu[0].value"]
    broken = client.post("/train", content="{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and "body" in _errors(broken)


def _serve_checkout(prometheus: PrometheusStub, spike_at: datetime | None = None) -> None:
    def values(pod_seed: int) -> Any:
        def at(times: np.ndarray) -> np.ndarray:
            result = values_at(times, pod_seed)
            if spike_at is not None:
                near = np.abs(times - spike_at.timestamp()) < 3 * STEP
                result = np.where(near, level(times) + 80.0, result)
            return result

        return at

    prometheus.series[QUERY] = [({"pod": "a"}, values(41)), ({"pod": "b"}, values(42))]


def test_train_and_detect_from_prometheus_with_an_explicit_range(
    client: TestClient, prometheus: PrometheusStub
) -> None:
    """Training asks exactly start, end and step; detection starts early for the context."""
    _serve_checkout(prometheus)
    start, end = START, START + timedelta(days=8)
    body = {"queries": [QUERY], "start": start.isoformat(), "end": end.isoformat(), "step": "5m"}
    response = client.post("/train", json=body)
    assert response.status_code == 200, response.text
    (model,) = response.json()["models"]
    assert model["card"]["query"] == QUERY and model["card"]["training_window"]["series"] == 2
    (asked,) = prometheus.requests
    assert asked == {
        "query": QUERY,
        "start": str(int(start.timestamp())),
        "end": str(int(end.timestamp())),
        "step": "300",
    }
    spike = LATER + timedelta(hours=5)
    _serve_checkout(prometheus, spike_at=spike)
    window = {"start": LATER.isoformat(), "end": (LATER + timedelta(hours=12)).isoformat()}
    response = client.post("/detect", json={"queries": [QUERY], **window})
    assert response.status_code == 200, response.text
    detect_asked = prometheus.requests[-1]
    # Early enough for the recent level (a day, refreshed hourly), more than the features.
    assert CONTEXT_STEPS == 288 + 12
    assert float(detect_asked["start"]) == LATER.timestamp() - CONTEXT_STEPS * STEP
    (result,) = response.json()["results"]
    assert [s["labels"] for s in result["series"]] == [{"pod": "a"}, {"pod": "b"}]
    for scored in result["series"]:
        assert scored["points_scored"] == 12 * 12 + 1  # the context is not reported
        hits = [w for w in scored["windows"] if w["start"] <= "2026-03-12T05:10:00Z" <= w["end"]]
        assert hits and hits[0]["severity"] == "critical"


def test_a_series_the_model_never_saw_is_listed_not_scored(
    client: TestClient, prometheus: PrometheusStub
) -> None:
    """A new pod has no baseline yet: it is named so the caller can retrain."""
    _serve_checkout(prometheus)
    body = {
        "queries": [QUERY],
        "start": START.isoformat(),
        "end": (START + timedelta(days=2)).isoformat(),
        "step": 300,
    }
    assert client.post("/train", json=body).status_code == 200
    prometheus.series[QUERY].append(({"pod": "c"}, lambda times: values_at(times, 43)))
    window = {"start": LATER.isoformat(), "end": (LATER + timedelta(hours=1)).isoformat()}
    (result,) = client.post("/detect", json={"queries": [QUERY], **window}).json()["results"]
    assert result["untrained_series"] == [{"pod": "c"}] and len(result["series"]) == 2


def test_prometheus_refusing_the_query_is_a_400_relaying_its_words(
    client: TestClient, prometheus: PrometheusStub
) -> None:
    """Bad PromQL: Prometheus' own message, on the query at fault."""
    _serve_checkout(prometheus)
    prometheus.errors["sum(rate(x[5m])))"] = Reply(400, BAD_PROMQL)
    body = {
        "queries": [QUERY, "sum(rate(x[5m])))"],
        "start": START.isoformat(),
        "end": (START + timedelta(days=2)).isoformat(),
        "step": 300,
    }
    response = client.post("/train", json=body)
    assert response.status_code == 400
    message = _errors(response)["queries[1]"]
    assert "parse error: unexpected right parenthesis" in message
    assert client.get("/api/models").json()["models"] == []  # nothing trained on a refusal


def test_an_unknown_metric_and_too_many_series_are_refused_naming_the_query(
    client: TestClient, prometheus: PrometheusStub
) -> None:
    """No data is a 422, and so is a query returning 10,000 series."""
    window = {
        "start": START.isoformat(),
        "end": (START + timedelta(days=2)).isoformat(),
        "step": 300,
    }
    response = client.post("/train", json={"queries": ["no_such_metric"], **window})
    assert response.status_code == 422
    assert "no series" in _errors(response)["queries[0]"]
    prometheus.series["up"] = [({"pod": str(i)}, lambda times: np.zeros(1)) for i in range(10_000)]
    response = client.post("/train", json={"queries": ["up"], **window})
    assert response.status_code == 422
    assert "returned 10000 series, at most 100" in _errors(response)["queries[0]"]


def test_prometheus_down_is_a_503_naming_prometheus(
    client: TestClient, prometheus: PrometheusStub, settings: Settings
) -> None:
    """An unreachable or failing Prometheus is not the caller's fault, and is said so."""
    prometheus.errors[QUERY] = Reply(
        503, {"status": "error", "errorType": "unavailable", "error": "too many queries"}
    )
    window = {
        "start": START.isoformat(),
        "end": (START + timedelta(days=2)).isoformat(),
        "step": 300,
    }
    response = client.post("/train", json={"queries": [QUERY], **window})
    assert response.status_code == 503
    assert "too many queries" in _errors(response)["prometheus"]
    closed = replace(settings, prometheus_url="http://127.0.0.1:9")  # the discard port
    with TestClient(create_app(closed)) as elsewhere:
        response = elsewhere.post("/train", json={"queries": [QUERY], **window})
    assert response.status_code == 503
    assert "unreachable" in _errors(response)["prometheus"]


def test_the_client_error_text_is_read_back() -> None:
    """What prometheus-api-client folds into its exception is Prometheus' message again."""
    raw = json.dumps(BAD_PROMQL).encode()
    error = PrometheusApiClientException(f"HTTP Status Code 400 ({raw!r})")
    assert prometheus_message(error) == (400, BAD_PROMQL["error"])
    assert prometheus_message(PrometheusApiClientException("odd")) == (0, "odd")


def test_not_ready_before_start(settings: Settings) -> None:
    """Without the lifespan (not started yet), readiness fails so no traffic arrives."""
    assert TestClient(create_app(settings)).get("/readyz").status_code == 503


def test_ready_once_started_and_metrics_exposed(client: TestClient) -> None:
    """Training is on demand: ready without a model; the API's requests are counted."""
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "models": 0}
    before = REGISTRY.get_sample_value("aiops_trainings_total", {"kind": "series"}) or 0.0
    _train_inline(client, "latency")
    text = client.get("/metrics").text
    assert 'http_requests_total{code="200",method="POST",route="/train"}' in text
    assert REGISTRY.get_sample_value("aiops_trainings_total", {"kind": "series"}) == before + 1
    assert REGISTRY.get_sample_value("aiops_models") == 1.0
