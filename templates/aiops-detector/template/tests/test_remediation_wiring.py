"""Remediation wired into the app: the rules loaded at start, each new window handed on, the list.

The background evaluation is driven by hand (``Evaluator.tick`` on the app's event loop);
Prometheus is the loopback stand-in of conftest, and the portal (with Prometheus' instant
queries for the deployed state) a fake transport, :class:`FakePortal`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.monitor import Evaluator
from app.rules import RulesError
from app.settings import Settings

from .conftest import Clock, PrometheusStub
from .synthetic import START, STEP, level, values_at

QUERY = 'sum(rate(http_requests_total{job="search"}[5m]))'
SPIKE = START + timedelta(days=9, hours=3)
TOKEN = "pst_0123456789ab_wiring-secret"
RULES = f"""\
dry_run: false
detector_url: https://detector.example.com
rules:
  - name: search-scale-out
    signal:
      query: '{QUERY}'
      min_severity: warning
    action:
      type: scale_out
      service: search
      environment: prod
      step: 1
      max: 6
"""


class FakePortal:
    """Answers the portal's ``POST /api/changes`` and Prometheus' instant queries; records both."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as the portal or Prometheus would."""
        self.requests.append(request)
        if request.url.path == "/api/v1/query":
            query = request.url.params["query"]
            value = "2" if "min_replicas" in query else "4"
            result = [{"metric": {}, "value": [1.0, value]}]
            return httpx.Response(200, json={"status": "success", "data": {"result": result}})
        if request.method == "POST" and request.url.path == "/api/changes":
            body = {"id": "c0ffee", "status": "checking", "url": "/api/changes/c0ffee"}
            return httpx.Response(202, json=body)
        return httpx.Response(404, json={"detail": "not found"})

    def proposals(self) -> list[httpx.Request]:
        """Return the changes proposed."""
        return [request for request in self.requests if request.url.path == "/api/changes"]


def _serve_spike(prometheus: PrometheusStub) -> None:
    def values(times: np.ndarray) -> np.ndarray:
        near = np.abs(times - SPIKE.timestamp()) < 2 * STEP
        return np.where(near, level(times) + 90.0, values_at(times, 51))

    prometheus.series[QUERY] = [({"job": "search"}, values)]


def _rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "remediation.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def portal() -> FakePortal:
    """Return a fake portal with nothing received."""
    return FakePortal()


@contextmanager
def _started(settings: Settings, clock: Clock, portal: FakePortal) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock, transport=httpx.MockTransport(portal))
    with TestClient(app) as client:
        window = {"start": START.isoformat(), "end": (START + timedelta(days=8)).isoformat()}
        trained = client.post("/train", json={"queries": [QUERY], **window, "step": 300})
        assert trained.status_code == 200, trained.text
        yield client


def _detect_spike(client: TestClient, clock: Clock) -> list[Any]:
    """Run the background evaluation before and after the spike, as its loop does."""
    evaluator = Evaluator(client.app.state.runtime)  # type: ignore[attr-defined]
    clock.now = SPIKE - timedelta(hours=1)
    assert client.portal.call(evaluator.tick) == []  # type: ignore[union-attr]
    clock.now = SPIKE + timedelta(minutes=20)
    records: list[Any] = client.portal.call(evaluator.tick)  # type: ignore[union-attr]
    return records


def test_a_matched_detection_is_listed_as_a_dry_run_proposal(
    settings: Settings, prometheus: PrometheusStub, clock: Clock, portal: FakePortal, tmp_path: Path
) -> None:
    """No PORTAL_TOKEN: the rule's proposal is only listed, with its evidence; nothing is sent."""
    _serve_spike(prometheus)
    settings = replace(settings, remediation_file=_rules(tmp_path, RULES), portal_token="")
    with _started(settings, clock, portal) as client:
        [record] = _detect_spike(client, clock)
        listed = client.get("/api/remediations").json()
    assert record.status == "dry-run"
    assert (listed["dry_run"], listed["rules"]) == (True, 1)
    assert "PORTAL_TOKEN is not set" in listed["dry_run_reason"]
    [item] = listed["remediations"]
    assert (item["rule"], item["status"], item["query"]) == ("search-scale-out", "dry-run", QUERY)
    assert item["title"].startswith("Scale out search in prod: HPA minimum 2 to 3")
    assert item["window_start"] <= SPIKE.isoformat() <= item["window_end"]
    evidence = {entry["label"]: entry for entry in item["payload"]["evidence"]}
    chart = urlsplit(evidence["chart"]["url"])
    asked = parse_qs(chart.query)
    assert (chart.netloc, asked["query"]) == ("detector.example.com", [QUERY])
    assert asked["start"][0] < item["window_start"] and asked["end"][0] > item["window_end"]
    assert portal.proposals() == []  # the deployed state was read; nothing proposed


def test_dry_run_in_the_rules_file_holds_even_with_a_token(
    settings: Settings, prometheus: PrometheusStub, clock: Clock, portal: FakePortal, tmp_path: Path
) -> None:
    """``dry_run: true`` is the reviewed switch: a token alone sends nothing."""
    _serve_spike(prometheus)
    rules = _rules(tmp_path, RULES.replace("dry_run: false", "dry_run: true"))
    settings = replace(settings, remediation_file=rules, portal_token=TOKEN)
    with _started(settings, clock, portal) as client:
        [record] = _detect_spike(client, clock)
        listed = client.get("/api/remediations").json()
    assert record.status == "dry-run" and portal.proposals() == []
    assert listed["dry_run_reason"] == "dry_run is true in the rules file"


def test_with_a_token_the_proposal_is_posted_with_the_bearer_token(
    settings: Settings, prometheus: PrometheusStub, clock: Clock, portal: FakePortal, tmp_path: Path
) -> None:
    """``dry_run: false`` and a token: the change goes to the portal's changes API."""
    _serve_spike(prometheus)
    settings = replace(
        settings,
        remediation_file=_rules(tmp_path, RULES),
        portal_token=TOKEN,
        portal_url="http://portal.test",
    )
    with _started(settings, clock, portal) as client:
        [record] = _detect_spike(client, clock)
        listed = client.get("/api/remediations").json()
    [sent] = portal.proposals()
    assert str(sent.url) == "http://portal.test/api/changes"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    body = json.loads(sent.content)
    assert body["service"] == "search"
    [edit] = body["edits"]
    assert edit["path"] == "services/search/deploy/overlays/prod/kustomization.yaml"
    assert (record.status, record.change_url) == (
        "proposed",
        "http://portal.test/api/changes/c0ffee",
    )
    assert listed["dry_run"] is False
    assert [item["status"] for item in listed["remediations"]] == ["proposed"]
    assert TOKEN not in json.dumps(listed)


def test_a_window_continued_by_the_next_evaluation_keeps_its_start(
    client: TestClient, prometheus: PrometheusStub, clock: Clock
) -> None:
    """An anomaly that spans two evaluations is handed on as one incident, from its start."""
    _serve_spike(prometheus)
    window = {"start": START.isoformat(), "end": (START + timedelta(days=8)).isoformat()}
    assert (
        client.post("/train", json={"queries": [QUERY], **window, "step": 300}).status_code == 200
    )
    evaluator = Evaluator(client.app.state.runtime)  # type: ignore[attr-defined]
    clock.now = SPIKE - timedelta(hours=1)
    evaluator.evaluate()
    clock.now = SPIKE
    [first] = evaluator.evaluate()
    clock.now = SPIKE + timedelta(minutes=30)
    [continued] = evaluator.evaluate()
    assert first.start <= SPIKE < continued.end
    assert continued.start == first.start
    assert continued.peak_score >= first.peak_score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (RULES.replace("step: 1", "step: 0"), "line 12, rules[0].action.step: Input should be"),
        (RULES.replace("type: scale_out", "type: reboot"), "line 9, rules[0].action: Input tag"),
        (RULES + "unknown: 1\n", "line 14, unknown: Extra inputs are not permitted"),
        (None, "not found (set REMEDIATION_FILE"),
    ],
)
def test_a_bad_rules_file_stops_the_start_naming_line_and_field(
    settings: Settings, tmp_path: Path, text: str | None, expected: str
) -> None:
    """The app does not start on rules with a problem; each problem names line and field."""
    path = _rules(tmp_path, text) if text is not None else tmp_path / "absent.yaml"
    app = create_app(replace(settings, remediation_file=path))
    with pytest.raises(RulesError) as refused, TestClient(app):
        pass  # pragma: no cover - the start fails
    assert any(problem.startswith(f"{path}") for problem in refused.value.problems)
    assert any(expected in problem for problem in refused.value.problems), refused.value.problems
