"""The aiops-detector's generated app, served as the image runs it (from its runtime lock):
training and detecting over HTTP, on inline series and on a real Prometheus holding a
backfilled history, charting it on its page, and refusing to start on a bad rules file.

The questions and what a render holds are tested in test_aiops_detector.py."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from portal.integrations.prometheus_local import LocalPrometheus
from portal.scaffold.registry.bundled import PublishedTemplate
from tests.conftest import require_tool
from tests.templates.aiops_render import DEFAULTS, TEMPLATE, published_template, render_aiops
from tests.templates.rendering import Rendered
from tests.templates.service_process import offline_env, serving_app
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv

# The backfilled history: a daily wave with noise every 5 minutes for 10 days, and one
# 20-minute spike on the tenth day that detection must find.
METRIC = "checkout_request_latency_ms"
QUERY = f'{METRIC}{{job="checkout"}}'
HISTORY_START = datetime(2026, 3, 2, tzinfo=UTC)
STEP = 300
DAYS = 10
SPIKE = HISTORY_START + timedelta(days=9, hours=5)
# A real labelled series beside it: NAB's EC2 request latency during a known outage (MIT,
# templates/aiops-detector/evaluation/nab/), moved to start 12 days after the synthetic one.
NAB = TEMPLATE / "evaluation" / "nab"
OUTAGE = "realKnownCause/ec2_request_latency_system_failure.csv"
NAB_METRIC = "nab_ec2_request_latency"
NAB_START = HISTORY_START + timedelta(days=12)
MAX_FALSE_ALARMS = 10  # the target: at most 10 false-alarm events per 4,000 points


def history(days: int = DAYS) -> tuple[np.ndarray, np.ndarray]:
    """Return the timestamps and values of the synthetic latency, spike included."""
    times = HISTORY_START.timestamp() + STEP * np.arange(days * 86400 // STEP, dtype=np.float64)
    hours = np.mod(times, 86400) / 3600
    values = 200 + 60 * np.cos((hours - 14) / 24 * 2 * math.pi)
    values += np.random.default_rng(7).normal(0, 6, times.size)
    spike = (times >= SPIKE.timestamp()) & (times < SPIKE.timestamp() + 4 * STEP)
    return times, np.where(spike, values + 250, values)


def _nab_seconds(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def nab_outage() -> tuple[list[float], list[float], list[tuple[float, float]]]:
    """The outage file moved to ``NAB_START``: times, values (a repeated time keeps its last
    value, as the detector's series do) and the labelled windows, in Unix seconds."""
    with (NAB / "data" / OUTAGE).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    shift = NAB_START.timestamp() - _nab_seconds(rows[0]["timestamp"])
    points = {_nab_seconds(row["timestamp"]) + shift: float(row["value"]) for row in rows}
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text(encoding="utf-8"))
    windows = [(_nab_seconds(a) + shift, _nab_seconds(b) + shift) for a, b in labels[OUTAGE]]
    times = sorted(points)
    return times, [points[t] for t in times], windows


def inline(times: np.ndarray, values: np.ndarray) -> list[dict[str, float]]:
    """Return points as the API's inline series (Unix seconds)."""
    return [{"timestamp": float(t), "value": float(v)} for t, v in zip(times, values, strict=True)]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublishedTemplate]:
    with published_template(tmp_path_factory.mktemp("data")) as template:
        yield template


@pytest.fixture(scope="module")
def default_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    return render_aiops(published, DEFAULTS, tmp_path_factory.mktemp("gitops"))


@dataclass(frozen=True)
class Served:
    """The default render served from its runtime lock, reading a real Prometheus."""

    url: str
    prometheus: str


def _backfill(folder: Path) -> None:
    promtool = require_tool("promtool")
    times, values = history()
    text = folder / "history.om"
    lines = [f"# TYPE {METRIC} gauge"]
    lines += [
        f'{METRIC}{{job="checkout"}} {v:.3f} {int(t)}' for t, v in zip(times, values, strict=True)
    ]
    nab_times, nab_values, _ = nab_outage()
    lines.append(f"# TYPE {NAB_METRIC} gauge")
    lines += [f"{NAB_METRIC} {v} {int(t)}" for t, v in zip(nab_times, nab_values, strict=True)]
    text.write_text("\n".join([*lines, "# EOF", ""]), encoding="utf-8")
    created = subprocess.run(
        [
            *(str(promtool), "tsdb", "create-blocks-from", "openmetrics"),
            *("--max-block-duration=504h", "--", str(text), str(folder / "data")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr[-2000:]


def _wait_for_history(url: str) -> None:
    at = HISTORY_START.timestamp() + 86400
    deadline = time.monotonic() + 15
    with httpx.Client(base_url=url, trust_env=False, timeout=5) as client:
        while time.monotonic() < deadline:
            answer = client.get("/api/v1/query", params={"query": QUERY, "time": at})
            if answer.status_code == 200 and answer.json()["data"]["result"]:
                return
            time.sleep(0.1)
    pytest.fail(f"Prometheus at {url} did not serve the backfilled history")


@pytest.fixture(scope="module")
def served(default_service: Rendered, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One slow fixture: a backfilled Prometheus and the service reading it."""
    executable = require_tool("prometheus")
    folder = tmp_path_factory.mktemp("aiops-prometheus")
    _backfill(folder)
    python = lock_venv(default_service.dest / RUNTIME_LOCK, TEMPLATE.name)
    prometheus = LocalPrometheus(folder, executable=executable, retention="60d", scrape_self=False)
    prometheus.start()
    try:
        _wait_for_history(prometheus.url)
        env = offline_env(
            PROMETHEUS_URL=prometheus.url,
            MODEL_DIR=str(folder / "models"),
            LOG_LEVEL="WARNING",
            MAX_ATTEMPTS="1",
        )
        with serving_app(default_service.dest, env, python=python, ready_path="/readyz") as url:
            yield Served(url, prometheus.url)
    finally:
        prometheus.stop()


def _errors(response: httpx.Response) -> dict[str, str]:
    return {item["field"]: item["message"] for item in response.json()["errors"]}


def _spike_windows(result: dict[str, Any]) -> list[dict[str, Any]]:
    (scored,) = result["series"]
    spike = SPIKE.isoformat().replace("+00:00", "Z")
    return [w for w in scored["windows"] if w["start"] <= spike <= w["end"]]


@pytest.mark.integration
def test_the_service_trains_and_detects_inline_series(served: Served) -> None:
    times, values = history()
    train, detect = slice(0, 8 * 288), slice(9 * 288, 10 * 288)
    with httpx.Client(base_url=served.url, trust_env=False, timeout=30) as client:
        trained = client.post(
            "/train", json={"series": {"latency": inline(times[train], values[train])}}
        )
        assert trained.status_code == 200, trained.text
        card = trained.json()["models"][0]["card"]
        assert card["source"] == {"kind": "series", "name": "latency"}
        assert card["artifact"]["format"] == "skops" and len(card["artifact"]["sha256"]) == 64
        found = client.post(
            "/detect", json={"series": {"latency": inline(times[detect], values[detect])}}
        )
        assert found.status_code == 200, found.text
        (result,) = found.json()["results"]
        (window,) = _spike_windows(result)
        assert window["severity"] == "critical"
        nan = '{"series": {"latency": [{"timestamp": 1772409600, "value": NaN}]}}'
        refused = client.post("/detect", content=nan, headers={"Content-Type": "application/json"})
        assert refused.status_code == 422 and "series.latency[0].value" in _errors(refused)


@pytest.mark.integration
def test_the_service_trains_and_detects_a_query_of_a_real_prometheus(served: Served) -> None:
    start, end = HISTORY_START, HISTORY_START + timedelta(days=8)
    window = {"start": start.isoformat(), "end": end.isoformat(), "step": "5m"}
    with httpx.Client(base_url=served.url, trust_env=False, timeout=30) as client:
        trained = client.post("/train", json={"queries": [QUERY], **window})
        assert trained.status_code == 200, trained.text
        card = trained.json()["models"][0]["card"]
        assert card["query"] == QUERY
        assert card["training_window"]["points"] == 8 * 288 + 1  # both ends, every 5 minutes
        later = {
            "start": (HISTORY_START + timedelta(days=9)).isoformat(),
            "end": (HISTORY_START + timedelta(days=9, hours=12)).isoformat(),
        }
        found = client.post("/detect", json={"queries": [QUERY], **later})
        assert found.status_code == 200, found.text
        (result,) = found.json()["results"]
        assert result["series"][0]["labels"] == {"__name__": METRIC, "job": "checkout"}
        (spike,) = _spike_windows(result)
        assert spike["severity"] == "critical"

        bad = client.post("/train", json={"queries": [f"sum({QUERY}))"], **window})
        assert bad.status_code == 400
        assert "parse error" in _errors(bad)["queries[0]"]  # Prometheus' own words
        unknown = client.post("/train", json={"queries": ["no_such_metric"], **window})
        assert unknown.status_code == 422 and "no series" in _errors(unknown)["queries[0]"]
        untrained = client.post("/detect", json={"queries": ["up"], **later})
        assert untrained.status_code == 404 and "queries[0]" in _errors(untrained)
        scraped = client.get("/metrics").text
    assert 'aiops_trainings_total{kind="query"} 1.0' in scraped


@pytest.mark.integration
def test_the_page_charts_the_query_read_from_a_real_prometheus(served: Served) -> None:
    """The evidence's link (``?query=&start=&end=``) opens the spike, shaded, on the page."""
    start, end = HISTORY_START, HISTORY_START + timedelta(days=8)
    window = {"start": start.isoformat(), "end": end.isoformat(), "step": "5m"}
    with httpx.Client(base_url=served.url, trust_env=False, timeout=30) as client:
        assert client.post("/train", json={"queries": [QUERY], **window}).status_code == 200
        shown = {
            "query": QUERY,
            "start": (SPIKE - timedelta(hours=2)).isoformat(),
            "end": (SPIKE + timedelta(hours=2)).isoformat(),
        }
        page = client.get("/", params=shown)
        missing = client.get("/", params={"query": "up"})
        assert client.get("/static/uPlot.iife.min.js").status_code == 200
    assert page.status_code == 200, page.text
    found = re.findall(
        r'<script type="application/json" id="chart-data-[^"]+">(.*?)</script>', page.text
    )
    (chart,) = [json.loads(text) for text in found]
    assert len(chart["x"]) == 4 * 12 + 1  # every 5 minutes, both ends
    assert any(w[0] <= SPIKE.timestamp() <= w[1] and w[2] == "critical" for w in chart["windows"])
    assert missing.status_code == 404 and "No model for this query" in missing.text


@pytest.mark.integration
def test_the_served_app_refuses_to_start_on_a_bad_rules_file(
    default_service: Rendered, tmp_path: Path
) -> None:
    """As the image runs it: the problems named with their line and field, and no start."""
    python = lock_venv(default_service.dest / RUNTIME_LOCK, TEMPLATE.name)
    rules = tmp_path / "remediation.yaml"
    rules.write_text(
        "dry_run: false\nrules:\n  - name: Bad Name\n    signal: {query: up}\n"
        "    action: {type: restart, service: checkout, environment: prod}\n",
        encoding="utf-8",
    )
    env = offline_env(REMEDIATION_FILE=str(rules), MODEL_DIR=str(tmp_path / "models"))
    with (
        pytest.raises(RuntimeError, match="the service exited while starting") as refused,
        serving_app(default_service.dest, env, python=python, ready_path="/readyz"),
    ):
        pass  # pragma: no cover - the start fails
    assert f"{rules}, line 3, rules[0].name: String should match pattern" in str(refused.value)


@pytest.mark.integration
def test_a_nab_series_in_prometheus_is_trained_and_its_labelled_windows_found(
    served: Served,
) -> None:
    """Real labelled data through the real path: Prometheus, ``/train``, ``/detect``."""
    times, _, labelled = nab_outage()
    split = times[min(math.floor(0.15 * len(times)), 750)]  # NAB's probationary period
    iso = {t: datetime.fromtimestamp(t, UTC).isoformat() for t in (times[0], split, times[-1])}
    with httpx.Client(base_url=served.url, trust_env=False, timeout=60) as client:
        trained = client.post(
            "/train",
            json={"queries": [NAB_METRIC], "start": iso[times[0]], "end": iso[split], "step": "5m"},
        )
        assert trained.status_code == 200, trained.text
        found = client.post(
            "/detect", json={"queries": [NAB_METRIC], "start": iso[split], "end": iso[times[-1]]}
        )
    assert found.status_code == 200, found.text
    (result,) = found.json()["results"]
    (scored,) = result["series"]
    windows = [
        (
            datetime.fromisoformat(w["start"]).timestamp(),
            datetime.fromisoformat(w["end"]).timestamp(),
        )
        for w in scored["windows"]
    ]
    hits = [[a <= end and start <= b for start, end in labelled] for a, b in windows]
    assert all(any(row[i] for row in hits) for i in range(len(labelled))), (windows, labelled)
    false_alarms = [w for w, row in zip(windows, hits, strict=True) if not any(row)]
    assert len(false_alarms) * 4000 <= MAX_FALSE_ALARMS * len(times), false_alarms
