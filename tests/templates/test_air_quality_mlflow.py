"""The generated air-quality service against a real MLflow server (``mlflow_url``).

Rendered through the portal's own path and served from its runtime lock (uvicorn in a
child process, fed recorded Open-Meteo responses on loopback): three starts log three
versions with the portal's tags, holdout metrics and both artifacts; a start pinned to
version 2 serves that version and says so in ``/api/model`` and ``model_info``. The
registry is read back over MLflow's REST API, as the portal reads it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from portal.scaffold.registry.manifest import load_template
from tests.integrations.mlflow_support import MODEL_VERSION_TAGS
from tests.templates.air_quality_app import (
    FIXTURES,
    LAHORE,
    LAHORE_PM25,
    open_meteo_stand_in,
    running_service,
    service_json,
    train_versions,
)
from tests.templates.rendering import TEMPLATES_DIR, Rendered, published_template, render_service
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv

pytestmark = pytest.mark.integration

TEMPLATE = TEMPLATES_DIR / "air-quality-monitor"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    """Render a service whose name (so its registered model) no other test uses."""
    answers: dict[str, object] = {"name": f"aq-{uuid4().hex[:12]}", "owner": "platform-team"}
    with published_template(TEMPLATE, tmp_path_factory.mktemp("data")) as published:
        info = load_template(TEMPLATE)
        yield render_service(info, published, answers, tmp_path_factory.mktemp("gitops"))


def _api(mlflow: httpx.Client, path: str, **params: str) -> Any:
    response = mlflow.get(f"/api/2.0/mlflow/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _artifact(mlflow: httpx.Client, run: dict[str, Any], path: str) -> bytes:
    """Download one artifact of a run through the server's artifact proxy."""
    root = run["info"]["artifact_uri"]
    assert root.startswith("mlflow-artifacts:/"), root
    response = mlflow.get(f"/api/2.0/mlflow-artifacts/artifacts/{root[18:]}/{path}")
    assert response.status_code == 200, response.text
    return response.content


def test_three_trainings_log_three_versions_and_a_pin_serves_version_2(
    service: Rendered, mlflow_url: str, tmp_path: Path
) -> None:
    name = f"{service.answers['name']}-air-quality"
    python = lock_venv(service.dest / RUNTIME_LOCK, TEMPLATE.name)
    trained = train_versions(service.dest, mlflow_url, [LAHORE, LAHORE_PM25, LAHORE], tmp_path)
    assert [model["registry"]["version"] for model in trained] == ["1", "2", "3"]
    assert all(model["registry"]["name"] == name for model in trained)

    with httpx.Client(base_url=mlflow_url, timeout=30) as mlflow:
        found = _api(mlflow, "model-versions/search", filter=f"name='{name}'")
        versions = {v["version"]: v for v in found["model_versions"]}
        assert sorted(versions) == ["1", "2", "3"]
        relative = {}
        for number, model in zip(("1", "2", "3"), trained, strict=True):
            version = versions[number]
            tags = {tag["key"]: tag["value"] for tag in version["tags"]}
            assert set(tags) >= MODEL_VERSION_TAGS, number
            assert tags["sha256"] == model["artifact"]["sha256"] == model["registry"]["sha256"]
            assert (tags["service"], tags["template"]) == (service.answers["name"], TEMPLATE.name)
            assert tags["template_version"] == service.template.version
            assert tags["training_window_start"].endswith("+05:00")  # Lahore, with its offset
            assert tags["primary_metric"] == "holdout_relative_mae"
            assert tags["primary_metric_direction"] == "lower"
            assert version["source"] == f"runs:/{version['run_id']}/model"
            run = _api(mlflow, "runs/get", run_id=version["run_id"])["run"]
            metrics = {item["key"]: item["value"] for item in run["data"]["metrics"]}
            skill = model["metrics"]["forecast"]["pm2_5"]
            assert metrics["holdout_mae_pm2_5"] == pytest.approx(skill["mae"])
            relative[number] = metrics["holdout_relative_mae"]
            skops = _artifact(mlflow, run, "model/model.skops")
            assert hashlib.sha256(skops).hexdigest() == tags["sha256"]
            card = _artifact(mlflow, run, "model/model-card.json")
            assert tags["sha256"].encode() in card
    # Persistence on the 5-day recording, a ridge model beating it on the 7-day one.
    assert relative["1"] == pytest.approx(1.0) == relative["3"]
    assert relative["2"] < 0.9

    recorded = (service.dest / FIXTURES / LAHORE).read_bytes()
    with (
        open_meteo_stand_in(recorded) as open_meteo,
        running_service(
            service.dest,
            open_meteo,
            tmp_path / "pinned",
            python,
            MLFLOW_TRACKING_URI=mlflow_url,
            MODEL_VERSION="2",
        ) as url,
    ):
        served = service_json(url, "/api/model")
        exposition = httpx.get(url + "/metrics", timeout=30).text
    assert served["registry"] == {
        "name": name,
        "version": "2",
        "pinned": True,
        "source": "mlflow",
        "sha256": trained[1]["artifact"]["sha256"],
    }
    # Version 2 learnt from the PM2.5-only recording; what this start trained itself on
    # (the 5-day one, PM10 too) became a candidate, version 4, and is not served.
    assert list(served["metrics"]["forecast"]) == ["pm2_5"]
    assert served["version"] == trained[1]["version"]
    assert f'model_info{{name="{name}",version="2"}} 1.0' in exposition
    assert 'model_info{name="' + name + '",version="4"}' not in exposition
    with httpx.Client(base_url=mlflow_url, timeout=30) as mlflow:
        found = _api(mlflow, "model-versions/search", filter=f"name='{name}'")
    assert len(found["model_versions"]) == 4
