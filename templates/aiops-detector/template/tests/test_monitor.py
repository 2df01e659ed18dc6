"""The background evaluation: the newest points of each trained query, counted once."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.monitor import Evaluator

from .conftest import Clock, PrometheusStub, Reply
from .synthetic import START, STEP, level, values_at

QUERY = 'sum(rate(http_requests_total{job="search"}[5m]))'
SPIKE = START + timedelta(days=9, hours=3)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _counted() -> float:
    return sum(
        _sample("aiops_anomalies_total", query=QUERY, severity=severity)
        for severity in ("warning", "critical")
    )


def _serve(prometheus: PrometheusStub) -> None:
    def values(times: np.ndarray) -> np.ndarray:
        near = np.abs(times - SPIKE.timestamp()) < 2 * STEP
        return np.where(near, level(times) + 90.0, values_at(times, 51))

    prometheus.series[QUERY] = [({"job": "search"}, values)]


def test_each_interval_scores_the_new_points_once(
    client: TestClient, prometheus: PrometheusStub, clock: Clock
) -> None:
    """The spike is counted by the evaluation that first sees it, never again."""
    _serve(prometheus)
    window = {
        "start": START.isoformat(),
        "end": (START + timedelta(days=8)).isoformat(),
        "step": 300,
    }
    assert client.post("/train", json={"queries": [QUERY], **window}).status_code == 200
    evaluator = Evaluator(client.app.state.runtime)  # type: ignore[attr-defined]
    before = _counted()
    critical = _sample("aiops_anomalies_total", query=QUERY, severity="critical")
    clock.now = SPIKE - timedelta(hours=1)
    evaluator.evaluate()
    first = prometheus.requests[-1]
    assert float(first["end"]) == clock.now.timestamp() and first["step"] == "300"
    assert _sample("aiops_anomaly_score", query=QUERY) < 1.0
    clock.now = SPIKE + timedelta(minutes=5)  # the last point of the spike is the newest
    evaluator.evaluate()
    found = _counted() - before
    assert found >= 3  # the spike's points (a lone first one counts half: a warning)
    assert _sample("aiops_anomalies_total", query=QUERY, severity="critical") > critical
    assert _sample("aiops_anomaly_score", query=QUERY) > 1.0
    # The second read started where the first ended, less the features' context.
    second = prometheus.requests[-1]
    assert float(second["start"]) < float(first["end"]) < float(second["end"])
    asked = len(prometheus.requests)
    evaluator.evaluate()  # no new point since: nothing is read or counted twice
    assert len(prometheus.requests) == asked
    assert _counted() - before == found


def test_a_failing_query_is_counted_and_the_loop_goes_on(
    client: TestClient, prometheus: PrometheusStub, clock: Clock
) -> None:
    """Prometheus' refusal is logged and counted; the next interval tries again."""
    _serve(prometheus)
    window = {
        "start": START.isoformat(),
        "end": (START + timedelta(days=8)).isoformat(),
        "step": 300,
    }
    assert client.post("/train", json={"queries": [QUERY], **window}).status_code == 200
    prometheus.errors[QUERY] = Reply(422, {"status": "error", "error": "execution: timeout"})
    before = _sample("aiops_evaluations_total", outcome="prometheus_error")
    Evaluator(client.app.state.runtime).evaluate()  # type: ignore[attr-defined]
    assert _sample("aiops_evaluations_total", outcome="prometheus_error") == before + 1
