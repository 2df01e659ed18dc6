"""Logging trained models to the MLflow registry, and the settings that turn it on.

Against a real MLflow store (a ``file:`` store in ``tmp_path``, see ``registry_support``);
a registry that is down is a loopback port nothing listens on.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.model_record import PRIMARY_METRIC, holdout_metrics, version_tags
from app.model_store import sha256_of
from app.settings import TEMPLATE_VERSION, Settings, SettingsError
from app.training import train_models

from .conftest import NOW, Clock
from .models import synthetic_timeline
from .registry_support import client_of, file_store, run_artifacts, sample

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
def store_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Return the URI of an empty MLflow file store."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return file_store(tmp_path)


def test_each_trained_model_is_logged_as_a_new_version(
    settings: Settings, clock: Clock, store_uri: str
) -> None:
    """A run with params, holdout metrics and both files; a version with the portal's tags."""
    logging = replace(settings, mlflow_tracking_uri=store_uri, git_commit="abc123")
    with TestClient(create_app(logging, clock=clock)) as client:
        client.get("/")  # the first refresh trains and logs version 1
        first = client.get("/api/model").json()
        clock.advance(120)
        trained = client.post("/train").json()
        served = client.get("/api/model").json()
        metrics = client.get("/metrics").text
    name = settings.registered_model
    assert first["registry"]["version"] == "1" and first["registry"]["source"] == "mlflow"
    assert trained["registry"]["version"] == "2" and trained["serving"] is True
    assert served["registry"] == {
        "name": name,
        "version": "2",
        "pinned": False,
        "source": "mlflow",
        "sha256": served["artifact"]["sha256"],
    }
    assert f'model_info{{name="{name}",version="2"}} 1.0' in metrics
    assert 'version="1"}' not in metrics.split("# HELP model_info")[1].split("# HELP")[0]

    mlflow = client_of(store_uri)
    version = mlflow.get_model_version(name, "1")
    tags = version.tags
    assert set(tags) >= TAGS
    local_file = settings.model_dir / first["artifact"]["file"]
    assert tags["sha256"] == sha256_of(local_file) == first["artifact"]["sha256"]
    assert (tags["service"], tags["template"]) == (settings.service_name, "air-quality-monitor")
    assert tags["template_version"] == TEMPLATE_VERSION and tags["git_commit"] == "abc123"
    assert tags["training_window_start"] == "2026-10-08T00:00:00+05:00"  # Lahore's offset
    assert tags["training_window_end"] == "2026-10-11T14:00:00+05:00"
    assert (tags["primary_metric"], tags["primary_metric_direction"]) == (PRIMARY_METRIC, "lower")
    assert "Open-Meteo" in tags["data_source"]
    assert version.source == f"runs:/{version.run_id}/model"

    run = mlflow.get_run(version.run_id)
    assert mlflow.get_experiment(run.info.experiment_id).name == name
    assert run.info.status == "FINISHED"
    skill = first["metrics"]["forecast"]["pm2_5"]
    assert run.data.metrics["holdout_mae_pm2_5"] == pytest.approx(skill["mae"])
    assert run.data.metrics["holdout_persistence_mae_pm2_5"] == pytest.approx(
        skill["persistence_mae"]
    )
    # 3 complete days are too few to fit: persistence forecasts, as good as itself.
    assert run.data.metrics[PRIMARY_METRIC] == pytest.approx(1.0)
    assert (
        run.data.metrics["anomaly_training_hours"] == first["metrics"]["anomaly"]["training_hours"]
    )
    assert run.data.params["anomaly.n_estimators"] == "100"
    assert run.data.params["anomaly.features"] == "pm2_5,pm10"

    folder = run_artifacts(mlflow, version.run_id) / "model"
    assert sorted(p.name for p in folder.iterdir()) == ["model-card.json", "model.skops"]
    artifact = (folder / "model.skops").read_bytes()
    assert hashlib.sha256(artifact).hexdigest() == tags["sha256"]
    card = json.loads((folder / "model-card.json").read_text())
    assert card["artifact"]["file"] == "model.skops"  # it names the file beside it
    assert card["artifact"]["sha256"] == tags["sha256"] and card["name"] == name
    assert len(mlflow.search_model_versions(f"name='{name}'")) == 2


def test_holdout_metrics_are_the_walk_forward_errors(settings: Settings) -> None:
    """Per pollutant the backtest's errors; the primary metric is the model's over persistence's."""
    models = train_models(synthetic_timeline(), settings, NOW)
    metrics = holdout_metrics(models.card)
    ratios = []
    for pollutant, forecaster in models.forecasters.items():
        skill = forecaster.skill
        assert skill.mae is not None and skill.persistence_mae is not None
        assert metrics[f"holdout_mae_{pollutant}"] == skill.mae
        assert metrics[f"holdout_persistence_mae_{pollutant}"] == skill.persistence_mae
        ratios.append(skill.mae / skill.persistence_mae)
    assert metrics[PRIMARY_METRIC] == pytest.approx(sum(ratios) / len(ratios))
    assert metrics["holdout_days"] == 3
    assert 0 < metrics[PRIMARY_METRIC] < 1  # the ridge models beat persistence on this series


def test_no_complete_day_means_no_holdout_figure(settings: Settings) -> None:
    """A pollutant without a judged day gets no metric rather than a made-up one."""
    card = {"metrics": {"forecast": {"pm2_5": {"mae": None, "persistence_mae": None}}}}
    assert holdout_metrics(card) == {}


def test_a_registry_that_is_down_never_fails_a_training(
    settings: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch, refusing_url: str
) -> None:
    """The model is trained and served; the log says why it was not logged; the counter moves."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = replace(settings, mlflow_tracking_uri=refusing_url)
    before = sample("model_registry_errors_total", {"operation": "log"})
    with TestClient(create_app(down, clock=clock)) as client:
        assert client.get("/").status_code == 200
        model = client.get("/api/model")
        assert client.get("/readyz").status_code == 200
    assert model.status_code == 200
    assert model.json()["registry"]["source"] == "local"
    assert model.json()["registry"]["version"] == "20261011T090000Z"
    assert sample("model_registry_errors_total", {"operation": "log"}) == before + 1


def test_without_a_tracking_uri_the_registry_code_is_never_loaded(
    settings: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No MLFLOW_TRACKING_URI: the service trains and serves as it always did, no MLflow."""
    monkeypatch.setitem(sys.modules, "app.registry", None)  # importing it now fails
    with TestClient(create_app(settings, clock=clock)) as client:
        assert client.get("/").status_code == 200
        assert client.app.state.monitor.registry is None  # type: ignore[attr-defined]
        assert client.get("/api/model").json()["registry"]["source"] == "local"


# --- settings --------------------------------------------------------------------------------


def _pin(**env: str) -> str:
    return Settings.from_env({"MLFLOW_TRACKING_URI": "http://mlflow:5000", **env}).model_version


def test_the_pin_comes_from_model_uri_or_model_version() -> None:
    """MODEL_URI wins over MODEL_VERSION; empty means unpinned."""
    name = Settings().registered_model
    assert _pin() == "" and _pin(MODEL_VERSION="") == ""
    assert _pin(MODEL_VERSION="7") == "7"
    assert _pin(MODEL_URI=f"models:/{name}/3", MODEL_VERSION="7") == "3"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODEL_VERSION": "latest"}, "MODEL_VERSION must name a version number"),
        ({"MODEL_VERSION": "0"}, "MODEL_VERSION must name a version number"),
        ({"MODEL_URI": "models:/other-air-quality/2"}, "this service serves"),
        ({"MODEL_URI": "runs:/abc/model"}, "MODEL_URI must be models:/<name>/<version>"),
        ({"MLFLOW_TRACKING_URI": "ftp://mlflow"}, "MLFLOW_TRACKING_URI must be"),
    ],
)
def test_bad_registry_settings_name_their_variable(env: dict[str, str], message: str) -> None:
    """A pin that is not a version of this service's model stops the service at start."""
    with pytest.raises(SettingsError, match=message):
        _pin(**env)


def test_a_pin_needs_a_registry() -> None:
    """MODEL_VERSION without MLFLOW_TRACKING_URI is refused, not ignored."""
    with pytest.raises(SettingsError, match="needs MLFLOW_TRACKING_URI"):
        Settings.from_env({"MODEL_VERSION": "2"})


def test_the_training_window_keeps_its_utc_offset(settings: Settings) -> None:
    """The window tags are ISO 8601 instants, not local wall times."""
    card = {
        "version": "v",
        "artifact": {"sha256": "ab"},
        "training_window": {
            "start": "2026-10-01T00:00:00",
            "end": None,
            "utc_offset_seconds": 7200,
        },
    }
    tags = version_tags(card, settings)
    assert tags["training_window_start"] == "2026-10-01T00:00:00+02:00"
    assert tags["training_window_end"] == ""
