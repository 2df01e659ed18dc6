"""Serving the pinned version of the registered model, and refusing one that fails a check.

Against a real MLflow store (a ``file:`` store in ``tmp_path``, see ``registry_support``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.model_store import ModelStore
from app.monitor import Monitor
from app.registry import MlflowRegistry
from app.settings import Settings
from app.training import TrainedModels, train_models

from .conftest import LAHORE, NOW, Clock
from .models import recorded_timeline
from .registry_support import (
    client_of,
    file_store,
    run_artifacts,
    sample,
    wait_for,
)


@pytest.fixture
def logging(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Return settings that log every trained model to an empty MLflow file store."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return replace(settings, mlflow_tracking_uri=file_store(tmp_path))


def pinned_to(logging: Settings, version: str, tmp_path: Path) -> Settings:
    """Return the settings of another replica (own model folder) pinned to ``version``."""
    return replace(
        logging, model_version=version, model_dir=tmp_path / "pinned", registry_retry_seconds=0.1
    )


def monitor_of(client: TestClient) -> Monitor:
    """Return the started app's monitor."""
    monitor: Monitor = client.app.state.monitor  # type: ignore[attr-defined]
    return monitor


def log_versions(logging: Settings, count: int = 1) -> list[TrainedModels]:
    """Train on the recorded data and log ``count`` versions, as another replica would.

    Straight through the registry, not a second app: the Prometheus registry is one per
    process, and a second app's ``model_info`` would stand for the pinned replica's.
    """
    registry = MlflowRegistry(logging)
    store = ModelStore(logging.model_dir / "trainer")
    logged = []
    for minutes in range(count):
        trained = train_models(recorded_timeline(LAHORE), logging, NOW + timedelta(minutes=minutes))
        saved = store.save(trained)
        version = registry.log(saved, store.directory / saved.card["artifact"]["file"])
        logged.append(replace(saved, registered_version=version))
    return logged


def test_the_pinned_version_is_served_and_trainings_only_add_candidates(
    logging: Settings, clock: Clock, tmp_path: Path
) -> None:
    """Not ready until version 1 exists and is loaded; then only version 1 is served."""
    name = logging.registered_model
    with TestClient(create_app(pinned_to(logging, "1", tmp_path), clock=clock)) as pinned:
        waiting = pinned.get("/readyz")
        assert waiting.status_code == 503
        assert waiting.json()["missing"].startswith("pinned model version 1 not loaded")
        assert pinned.get("/api/model").status_code == 503
        first, _ = log_versions(logging, count=2)  # the pin is loaded in the background
        wait_for(lambda: monitor_of(pinned).models is not None)
        assert pinned.get("/").status_code == 200  # data; its own training is a candidate
        assert pinned.get("/readyz").status_code == 200
        served = pinned.get("/api/model").json()
        clock.advance(120)
        candidate = pinned.post("/train").json()
        after = pinned.get("/api/model").json()
        metrics = pinned.get("/metrics").text
        assessment = pinned.get("/api/assessment").json()
    assert served["registry"] == {
        "name": name,
        "version": "1",
        "pinned": True,
        "source": "mlflow",
        "sha256": first.card["artifact"]["sha256"],
    }
    assert served["version"] == first.version and served["metrics"] == first.card["metrics"]
    assert candidate["registry"]["version"] == "4" and candidate["serving"] is False
    assert candidate["registry"]["pinned"] is False
    assert after["registry"]["version"] == "1" and after["version"] == first.version
    assert assessment["model_version"] == first.version
    assert f'model_info{{name="{name}",version="1"}} 1.0' in metrics
    assert 'version="2"' not in metrics and 'version="4"' not in metrics
    versions = client_of(logging.mlflow_tracking_uri).search_model_versions(f"name='{name}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]  # 3 and 4: its candidates


def _tamper(logging: Settings, what: str) -> None:
    client = client_of(logging.mlflow_tracking_uri)
    version = client.get_model_version(logging.registered_model, "1")
    folder = run_artifacts(client, version.run_id) / "model"
    if what == "artifact":
        artifact = folder / "model.skops"
        artifact.write_bytes(artifact.read_bytes() + b"tampered")
    elif what == "tag":
        client.set_model_version_tag(logging.registered_model, "1", "sha256", "0" * 64)
    elif what == "card":
        card = json.loads((folder / "model-card.json").read_text())
        card["artifact"]["sha256"] = "0" * 64
        (folder / "model-card.json").write_text(json.dumps(card))
    else:  # a card describing another service's model, with every digest intact
        card = json.loads((folder / "model-card.json").read_text())
        card["name"] = "other-air-quality"
        (folder / "model-card.json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("what", "reason"),
    [
        ("artifact", "the sha256 of model.skops"),
        ("tag", "the sha256 of model.skops"),
        ("card", "the card's sha256"),
        ("name", "describes the model 'other-air-quality'"),
    ],
)
def test_a_pinned_version_that_fails_a_check_is_never_served(
    logging: Settings, clock: Clock, tmp_path: Path, what: str, reason: str
) -> None:
    """Digests of tag, file and card must agree and the card name this model: else no model."""
    log_versions(logging)
    _tamper(logging, what)
    before = sample("model_registry_errors_total", {"operation": "load"})
    with TestClient(create_app(pinned_to(logging, "1", tmp_path), clock=clock)) as pinned:
        wait_for(lambda: monitor_of(pinned).pin_error is not None)
        assert pinned.get("/").status_code == 200  # the page works, with no model
        ready = pinned.get("/readyz")
        model = pinned.get("/api/model")
        assessment = pinned.get("/api/assessment").json()
        assert monitor_of(pinned).models is None
    assert ready.status_code == 503 and reason in ready.json()["missing"]
    assert model.status_code == 503 and reason in model.json()["reason"]
    assert assessment["model_version"] is None  # its own candidate is not served either
    assert sample("model_registry_errors_total", {"operation": "load"}) > before


def test_a_registry_that_is_down_keeps_a_pinned_service_unready(
    settings: Settings,
    clock: Clock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    refusing_url: str,
) -> None:
    """Not even a model stored here earlier is served; loading is retried and counted."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = pinned_to(replace(settings, mlflow_tracking_uri=refusing_url), "4", tmp_path)
    unpinned = replace(down, mlflow_tracking_uri="", model_version="")
    with TestClient(create_app(unpinned, clock=clock)) as earlier:
        earlier.get("/")  # leaves a trained model in the pinned replica's folder
    before = sample("model_registry_errors_total", {"operation": "load"})
    with TestClient(create_app(down, clock=clock)) as pinned:
        wait_for(lambda: sample("model_registry_errors_total", {"operation": "load"}) >= before + 2)
        ready = pinned.get("/readyz").json()
        model = pinned.get("/api/model")
    assert ready["missing"].startswith("pinned model version 4 not loaded: version 4 of ")
    assert model.status_code == 503
