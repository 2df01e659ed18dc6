"""The model registry (MLflow): trainings logged as versions, a pinned version served.

The registry is a real MLflow tracking store in a temporary folder (MLflow's ``file:``
store, through the same client as a tracking server), so no server is needed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.bundle import CARD_FILE, MODEL_FILE
from app.main import create_app
from app.mlflow_log import MlflowRegistry
from app.model_store import sha256_of
from app.settings import Settings

from .conftest import Clock
from .synthetic import START, points, series

NAME = "detector-test-detector"  # the conftest's service, "-detector"
TAGS = {
    "service",
    "template",
    "template_version",
    "git_commit",
    "training_window_start",
    "training_window_end",
    "sha256",
    "data_source",
    "primary_metric",
    "primary_metric_direction",
}


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Return a fresh file store's URI (MLflow keeps that store only on request)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return f"file:{tmp_path / 'mlruns'}"


def _client(tracking_uri: str) -> Any:
    return MlflowRegistry(tracking_uri, NAME).client()


def _train(client: TestClient, seed: int, name: str = "cpu") -> dict[str, Any]:
    response = client.post("/train", json={"series": {name: points(series(1, seed=seed))}})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _errors(operation: str) -> float:
    labels = {"operation": operation}
    return REGISTRY.get_sample_value("model_registry_errors_total", labels) or 0.0


def _served(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/model")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait_ready(client: TestClient) -> Any:
    """Poll readiness until the first load of the pinned version succeeded or failed."""
    deadline = time.monotonic() + 30
    while True:
        response = client.get("/readyz")
        fetching = "being fetched" in response.json().get("reason", "")
        if not fetching or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


@pytest.fixture
def logging_settings(settings: Settings, tracking_uri: str) -> Settings:
    """Return the conftest's settings with the registry turned on."""
    return replace(settings, mlflow_tracking_uri=tracking_uri, git_commit="0123abc")


@pytest.fixture
def logging_client(logging_settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """Yield a client of an unpinned app that logs every training."""
    with TestClient(create_app(logging_settings, clock=clock)) as test_client:
        yield test_client


def test_each_training_is_a_new_version_with_its_tags_metrics_and_files(
    logging_client: TestClient, tracking_uri: str, tmp_path: Path
) -> None:
    """A run in the model's experiment, the skops file and card, a version with every tag."""
    first = _train(logging_client, seed=41)
    assert first["registry"] == {"name": NAME, "version": "1", "pinned": False}
    assert _train(logging_client, seed=42)["registry"]["version"] == "2"
    mlflow = _client(tracking_uri)
    version = mlflow.get_model_version(NAME, "2")
    assert set(version.tags) == TAGS
    tags = version.tags
    assert (tags["service"], tags["template"], tags["git_commit"]) == (
        "detector-test",
        "aiops-detector",
        "0123abc",
    )
    assert (tags["primary_metric"], tags["primary_metric_direction"]) == ("holdout_f1", "higher")
    assert tags["training_window_start"] == START.isoformat().replace("+00:00", "Z")
    assert tags["data_source"] == "inline series"
    assert version.source == f"runs:/{version.run_id}/model"
    run = mlflow.get_run(version.run_id)
    assert run.info.experiment_id == mlflow.get_experiment_by_name(NAME).experiment_id
    figures = run.data.metrics
    assert 0.0 <= figures["holdout_f1"] <= 1.0 and figures["holdout_points"] > 0
    assert {"holdout_precision", "holdout_recall", "holdout_alarm_rate"} <= set(figures)
    assert run.data.params["false_alarm_rate"] == "0.001"
    assert run.data.params["n_estimators"] == "100"
    folder = Path(mlflow.download_artifacts(version.run_id, "model", str(tmp_path)))
    assert sorted(path.name for path in folder.iterdir()) == [CARD_FILE, MODEL_FILE]
    card = json.loads((folder / CARD_FILE).read_text())
    assert sha256_of(folder / MODEL_FILE) == tags["sha256"] == card["artifact"]["sha256"]
    assert card["name"] == NAME and [m["source"]["name"] for m in card["models"]] == ["cpu"]
    served = _served(logging_client)
    assert served["registry"] == {
        "name": NAME,
        "version": "2",
        "pinned": False,
        "source": "mlflow",
        "sha256": tags["sha256"],
    }
    assert REGISTRY.get_sample_value("model_info", {"name": NAME, "version": "2"}) == 1.0
    assert REGISTRY.get_sample_value("model_info", {"name": NAME, "version": "1"}) is None


def test_a_pinned_replica_serves_its_version_and_registers_candidates_only(
    logging_settings: Settings, logging_client: TestClient, clock: Clock
) -> None:
    """Version 1 is fetched, checked and served; what it trains becomes version 3, not served."""
    _train(logging_client, seed=41, name="pinned")
    _train(logging_client, seed=42, name="later")
    volume = logging_settings.model_dir  # holds both models: a pin never serves them
    pinned = replace(logging_settings, model_version="1")
    with TestClient(create_app(pinned, clock=clock)) as client:
        assert _wait_ready(client).status_code == 200
        served = _served(client)
        assert (served["version"], served["registry"]["pinned"]) == ("1", True)
        assert served["registry"]["source"] == "mlflow"
        assert [m["source"]["name"] for m in served["models"]] == ["pinned"]
        detect = client.post("/detect", json={"series": {"pinned": points(series(1, seed=5))}})
        assert detect.status_code == 200, detect.text
        answer = _train(client, seed=43, name="candidate")
        assert answer["registry"] == {"name": NAME, "version": "3", "pinned": True}
        after = _served(client)
        assert after["version"] == "1" and [m["source"]["name"] for m in after["models"]] == [
            "pinned"
        ]
        assert REGISTRY.get_sample_value("model_info", {"name": NAME, "version": "1"}) == 1.0
        # The volume never received the candidate: a pinned replica stores nothing.
        assert len(list(volume.iterdir())) == 2


def test_a_version_whose_file_is_not_its_sha256_is_never_served(
    logging_settings: Settings, logging_client: TestClient, clock: Clock, tracking_uri: str
) -> None:
    """The version's sha256 tag no longer matches: not ready, the reason said, nothing served."""
    _train(logging_client, seed=41)
    _client(tracking_uri).set_model_version_tag(NAME, "1", "sha256", "0" * 64)
    before = _errors("load")
    pinned = replace(logging_settings, model_version="1", model_retry_seconds=60.0)
    with TestClient(create_app(pinned, clock=clock)) as client:
        ready = _wait_ready(client)
        assert ready.status_code == 503
        assert ready.json()["status"] == "loading model"
        assert "is not the registered version's " + "0" * 64 in ready.json()["reason"]
        assert _errors("load") == before + 1
        assert client.get("/api/model").status_code == 503
        detect = client.post("/detect", json={"series": {"cpu": points(series(1, seed=5))}})
        assert detect.status_code == 503 and "sha256" in detect.text
        assert client.get("/api/models").json() == {"models": []}


def test_a_missing_version_keeps_the_replica_unready(
    logging_settings: Settings, clock: Clock
) -> None:
    """A pin naming a version the registry lacks is reported, not replaced by anything."""
    pinned = replace(logging_settings, model_version="7", model_retry_seconds=60.0)
    with TestClient(create_app(pinned, clock=clock)) as client:
        ready = _wait_ready(client)
        assert ready.status_code == 503
        assert "version 7 of detector-test-detector is not loaded" in ready.json()["reason"]


def test_a_registry_that_is_down_costs_a_counter_not_the_training(
    settings: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch, refusing_url: str
) -> None:
    """Training answers 200 and serves its model; the failure is counted and logged."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = replace(settings, mlflow_tracking_uri=refusing_url)
    before = _errors("log")
    with TestClient(create_app(down, clock=clock)) as client:
        answer = _train(client, seed=41)
        assert answer["registry"] == {"name": NAME, "version": None, "pinned": False}
        assert _errors("log") == before + 1
        served = _served(client)
        assert served["registry"]["source"] == "local"
        assert served["version"] == answer["models"][0]["model_version"]


def test_without_a_tracking_uri_nothing_is_logged(client: TestClient) -> None:
    """The answer is as before (no registry), and the model served is the local one."""
    assert client.app.state.runtime.versioning is None  # type: ignore[attr-defined]
    answer = _train(client, seed=41)
    assert set(answer) == {"models"}
    served = _served(client)
    assert served["registry"]["source"] == "local" and served["registry"]["pinned"] is False
