"""What is specific to the aiops-detector template: its questions, the answers in the rendered
settings and Deployment, the portal token as a Secret reference, the remediation rules as a
hashed ConfigMap mounted read-only, the anomaly alerts, and the generated app training and
detecting over HTTP, on inline series and on a real Prometheus holding a backfilled history,
charting it on its page, and refusing to start on a bad rules file.

Everything every template provides (files, objects of every overlay, review checks, probes,
metrics, traces, the generated tests from the lock) is checked by test_contract.py."""

from __future__ import annotations

import json
import math
import re
import shutil
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
import yaml

from portal.integrations import copier as copier_integration
from portal.integrations.prometheus_local import LocalPrometheus
from portal.scaffold.answers import validate_answers
from portal.scaffold.registry.bundled import PublishedTemplate, discover, publish
from portal.scaffold.registry.manifest import load_template
from tests.conftest import require_tool
from tests.templates.rendering import (
    TEMPLATES_DIR,
    Rendered,
    built_overlays,
    by_kind,
    load,
    render_service,
)
from tests.templates.service_process import offline_env, serving_app
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv

TEMPLATE = TEMPLATES_DIR / "aiops-detector"
DEFAULTS: dict[str, object] = {
    "name": "checkout-anomalies",
    "owner": "platform-team",
    "description": "Flags anomalies in checkout latency",
}
CUSTOM: dict[str, object] = {
    **DEFAULTS,
    "name": "search-anomalies",
    "prometheus_url": "http://prometheus.observability.svc:9090",
    "portal_url": "https://portal.example.com",
    "detect_interval_seconds": "300",
    "dry_run": False,
    "false_alarm_rate": "0.0005",
}
# The backfilled history: a daily wave with noise every 5 minutes for 10 days, and one
# 20-minute spike on the tenth day that detection must find.
METRIC = "checkout_request_latency_ms"
QUERY = f'{METRIC}{{job="checkout"}}'
HISTORY_START = datetime(2026, 3, 2, tzinfo=UTC)
STEP = 300
DAYS = 10
SPIKE = HISTORY_START + timedelta(days=9, hours=5)


def history(days: int = DAYS) -> tuple[np.ndarray, np.ndarray]:
    """Return the timestamps and values of the synthetic latency, spike included."""
    times = HISTORY_START.timestamp() + STEP * np.arange(days * 86400 // STEP, dtype=np.float64)
    hours = np.mod(times, 86400) / 3600
    values = 200 + 60 * np.cos((hours - 14) / 24 * 2 * math.pi)
    values += np.random.default_rng(7).normal(0, 6, times.size)
    spike = (times >= SPIKE.timestamp()) & (times < SPIKE.timestamp() + 4 * STEP)
    return times, np.where(spike, values + 250, values)


def inline(times: np.ndarray, values: np.ndarray) -> list[dict[str, float]]:
    """Return points as the API's inline series (Unix seconds)."""
    return [{"timestamp": float(t), "value": float(v)} for t, v in zip(times, values, strict=True)]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublishedTemplate]:
    yield publish(load_template(TEMPLATE), tmp_path_factory.mktemp("data"))
    copier_integration.shutdown()


@pytest.fixture(scope="module")
def default_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    info = load_template(TEMPLATE)
    return render_service(info, published, DEFAULTS, tmp_path_factory.mktemp("gitops"))


@pytest.fixture(scope="module")
def custom_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    info = load_template(TEMPLATE)
    return render_service(info, published, CUSTOM, tmp_path_factory.mktemp("gitops"))


# --- the template and its questions ----------------------------------------------------------


def test_the_template_is_registered_with_its_questions() -> None:
    (info,) = [i for i in discover(TEMPLATES_DIR) if i.name == "aiops-detector"]
    assert (info.title, info.owner, info.version) == (
        "AIOps anomaly detector",
        "platform-team",
        "0.3.0",
    )
    questions = {q.name: q for q in info.questions}
    defaults = {
        name: questions[name].default
        for name in ("prometheus_url", "portal_url", "detect_interval_seconds", "dry_run")
    }
    assert defaults == {
        "prometheus_url": "http://prometheus-operated.monitoring.svc:9090",
        "portal_url": "http://portal.portal.svc:8000",
        "detect_interval_seconds": 60,
        "dry_run": True,
    }
    assert questions["false_alarm_rate"].default == 0.001
    assert questions["dry_run"].kind == "bool"
    assert not any("token" in name for name in questions)  # a secret is never an answer


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"prometheus_url": "prometheus:9090"}, "prometheus_url", "http(s) URL"),
        ({"prometheus_url": "http://p:9090/?q=x"}, "prometheus_url", "http(s) URL"),
        ({"portal_url": "ftp://portal"}, "portal_url", "http(s) URL"),
        ({"detect_interval_seconds": "5"}, "detect_interval_seconds", "between 15 and 3600"),
        ({"false_alarm_rate": "0.5"}, "false_alarm_rate", "between 0.00001 and"),
        ({"false_alarm_rate": "0"}, "false_alarm_rate", "between 0.00001 and"),
        ({"replicas_min": "3", "replicas_max": "2"}, "replicas_max", "at least the minimum (3)"),
    ],
)
def test_bad_answers_get_a_message_on_their_field(
    answers: dict[str, object], field: str, message: str
) -> None:
    _, errors = validate_answers(load_template(TEMPLATE).questions, {**DEFAULTS, **answers})
    assert message in errors[field]


# --- renders ---------------------------------------------------------------------------------


def _container(service: Rendered) -> dict[str, Any]:
    deployment = load(service.dest / "deploy" / "base" / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_portal_token_is_a_secret_reference_never_a_value(default_service: Rendered) -> None:
    env = {item["name"]: item for item in _container(default_service)["env"]}
    token = env["PORTAL_TOKEN"]
    assert "value" not in token  # no secret in the GitOps repository
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": "checkout-anomalies-portal-token",
        "key": "token",
        "optional": True,
    }
    answers = (default_service.dest / ".copier-answers.yml").read_text(encoding="utf-8")
    assert "token" not in answers


def test_custom_answers_reach_the_settings_and_the_deployment(custom_service: Rendered) -> None:
    # Read by the rendered service itself, as the image runs it (its runtime lock).
    python = lock_venv(custom_service.dest / RUNTIME_LOCK, TEMPLATE.name)
    script = "import dataclasses, json; from app.settings import Settings; "
    script += "print(json.dumps(dataclasses.asdict(Settings.from_env({})), default=str))"
    shown = subprocess.run(
        [str(python), "-c", script],
        cwd=custom_service.dest,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)
    assert settings["service_name"] == "search-anomalies"
    assert settings["prometheus_url"] == "http://prometheus.observability.svc:9090"
    assert settings["portal_url"] == "https://portal.example.com"
    assert settings["detect_interval_seconds"] == 300
    assert settings["false_alarm_rate"] == 0.0005 and settings["portal_token"] == ""
    env = {item["name"]: item.get("value") for item in _container(custom_service)["env"]}
    assert env["PROMETHEUS_URL"] == "http://prometheus.observability.svc:9090"
    assert env["PORTAL_URL"] == "https://portal.example.com"
    assert (env["DETECT_INTERVAL_SECONDS"], env["FALSE_ALARM_RATE"]) == ("300", "0.0005")
    assert env["MODEL_DIR"] == "/models"
    # Dry run is said once, in the reviewed rules file (no DRY_RUN variable to disagree).
    assert "DRY_RUN" not in env
    rules = load(custom_service.dest / "deploy" / "base" / "remediation.yaml")
    assert (rules["dry_run"], rules["rules"]) == (False, [])
    assert rules["detector_url"] == "http://search-anomalies.search-anomalies.svc.cluster.local"


@pytest.mark.integration
def test_the_rules_are_a_configmap_mounted_read_only_that_rolls_the_pods(
    default_service: Rendered, tmp_path: Path
) -> None:
    """deploy/base/remediation.yaml becomes a hashed ConfigMap: a reviewed change rolls the pods."""
    rules_file = default_service.dest / "deploy" / "base" / "remediation.yaml"
    assert load(rules_file)["dry_run"] is True  # the default answer
    names = set()
    for environment, objects in built_overlays(default_service.dest).items():
        kinds = by_kind(objects)
        config = kinds["ConfigMap"]
        assert config["metadata"]["name"].startswith("checkout-anomalies-remediation-")
        assert config["metadata"]["namespace"] == "checkout-anomalies"
        assert config["data"] == {"remediation.yaml": rules_file.read_text(encoding="utf-8")}
        pod = kinds["Deployment"]["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert volumes["remediation"]["configMap"]["name"] == config["metadata"]["name"]
        (container,) = pod["containers"]
        mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
        assert mounts["remediation"] == {
            "name": "remediation",
            "mountPath": "/etc/aiops",
            "readOnly": True,
        }
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["REMEDIATION_FILE"] == "/etc/aiops/remediation.yaml", environment
        names.add(config["metadata"]["name"])
    assert len(names) == 1
    changed = tmp_path / "service"
    shutil.copytree(default_service.dest, changed)
    edited = changed / "deploy" / "base" / "remediation.yaml"
    edited.write_text(edited.read_text().replace("dry_run: true", "dry_run: false"))
    rebuilt = by_kind(built_overlays(changed)["dev"])
    new_name = rebuilt["ConfigMap"]["metadata"]["name"]
    assert new_name not in names  # a new name: the pod template changes, the pods roll
    volumes = rebuilt["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "remediation", "configMap": {"name": new_name}} in volumes


@pytest.mark.integration
def test_the_anomaly_alerts_are_valid_rules(default_service: Rendered, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rule = load(default_service.dest / "deploy" / "base" / "prometheusrule.yaml")
    assert rule["kind"] == "PrometheusRule"
    rules = [item for group in rule["spec"]["groups"] for item in group["rules"]]
    assert {item["alert"] for item in rules} == {
        "CheckoutAnomaliesAnomalyCritical",
        "CheckoutAnomaliesAnomalyWarning",
        "CheckoutAnomaliesEvaluationsFailing",
    }
    assert all('namespace="checkout-anomalies"' in item["expr"] for item in rules)
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- the generated app, served as the image runs it ------------------------------------------


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
