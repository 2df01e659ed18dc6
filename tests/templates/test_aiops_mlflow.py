"""The generated aiops-detector against a real MLflow server: trainings become model versions
with their tags, holdout metrics and files, and a pinned replica serves its version.

The detector runs from its runtime lock, as the image does; MLflow is the server of
``make tools`` (``mlflow_url``, tests/mlflow_server.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portal.scaffold.registry.bundled import PublishedTemplate
from portal.scaffold.registry.manifest import load_template
from tests.integrations.mlflow_support import MODEL_VERSION_TAGS
from tests.templates.aiops_mlflow import (
    GIT_COMMIT,
    MlflowReader,
    registered_name,
    serving_detector,
    train_versions,
    unique_name,
)
from tests.templates.aiops_render import DEFAULTS, TEMPLATE, published_template, render_aiops
from tests.templates.rendering import Rendered


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    """A detector rendered as the portal does, under a name no other test uses."""
    with published_template(tmp_path_factory.mktemp("data")) as published:
        yield _render(published, tmp_path_factory.mktemp("gitops"))


def _render(published: PublishedTemplate, root: Path) -> Rendered:
    return render_aiops(published, {**DEFAULTS, "name": unique_name()}, root)


@pytest.fixture
def reader(mlflow_url: str) -> Iterator[MlflowReader]:
    client = MlflowReader(mlflow_url)
    yield client
    client.close()


@pytest.mark.integration
def test_three_trainings_are_three_versions_and_a_pin_serves_version_2(
    rendered: Rendered, mlflow_url: str, reader: MlflowReader, tmp_path: Path
) -> None:
    name = registered_name(rendered)
    with serving_detector(rendered, mlflow_url, tmp_path / "unpinned") as url:
        assert train_versions(url, 3) == ["1", "2", "3"]
        served = httpx.get(f"{url}/api/model", trust_env=False, timeout=10).json()
        assert (served["version"], served["registry"]["source"]) == ("3", "mlflow")
    versions = reader.versions(name)
    assert [version["version"] for version in versions] == ["1", "2", "3"]
    template_version = load_template(TEMPLATE).version
    for version in versions:
        tags = version["tags"]
        assert set(tags) >= MODEL_VERSION_TAGS, sorted(MODEL_VERSION_TAGS - set(tags))
        assert (tags["service"], tags["template"]) == (rendered.answers["name"], TEMPLATE.name)
        assert (tags["template_version"], tags["git_commit"]) == (template_version, GIT_COMMIT)
        assert tags["training_window_start"] == "2026-03-02T00:00:00Z"
        assert (tags["primary_metric"], tags["primary_metric_direction"]) == (
            "holdout_f1",
            "higher",
        )
        assert version["source"] == f"runs:/{version['run_id']}/model"
        run = reader.run(version["run_id"])
        assert 0.0 <= run["metrics"]["holdout_f1"] <= 1.0
        assert run["metrics"]["holdout_points"] > 0 and run["metrics"]["holdout_spikes"] > 0
        assert run["params"]["false_alarm_rate"] == str(rendered.answers["false_alarm_rate"])
        model = reader.artifact(version["run_id"], "model/model.skops")
        card = json.loads(reader.artifact(version["run_id"], "model/model-card.json"))
        assert hashlib.sha256(model).hexdigest() == tags["sha256"] == card["artifact"]["sha256"]
        assert card["name"] == name and model.startswith(b"PK")  # a skops zip, not a pickle
    digests = {version["tags"]["sha256"] for version in versions}
    assert len(digests) == 3, "each training registered its own file"

    second = versions[1]["tags"]["sha256"]
    with (
        serving_detector(rendered, mlflow_url, tmp_path / "pinned", model_version="2") as url,
        httpx.Client(base_url=url, trust_env=False, timeout=30) as client,
    ):
        served = client.get("/api/model").json()
        assert served["version"] == "2"
        assert served["registry"] == {
            "name": name,
            "version": "2",
            "pinned": True,
            "source": "mlflow",
            "sha256": second,
        }
        metrics = client.get("/metrics").text
        assert f'model_info{{name="{name}",version="2"}} 1.0' in metrics
        # Training a pinned replica registers a candidate and keeps serving the pin.
        assert train_versions(url, 1, first_seed=9) == ["4"]
        assert client.get("/api/model").json()["version"] == "2"


@pytest.mark.integration
def test_a_pin_of_a_missing_version_is_not_ready_and_serves_nothing(
    rendered: Rendered, mlflow_url: str, tmp_path: Path
) -> None:
    """The replica says why it is not ready; the model served answers 503 meanwhile."""
    with (
        serving_detector(rendered, mlflow_url, tmp_path, "99", ready_path="/healthz") as url,
        httpx.Client(base_url=url, trust_env=False, timeout=30) as client,
    ):
        reason = ""
        for _ in range(600):  # the first fetch answers within seconds
            ready = client.get("/readyz")
            reason = ready.json().get("reason", "")
            if "being fetched" not in reason:
                break
            time.sleep(0.05)
        assert ready.status_code == 503
        assert f"{registered_name(rendered)} has no version 99" in reason
        assert client.get("/api/model").status_code == 503
        assert 'model_registry_errors_total{operation="load"}' in client.get("/metrics").text
