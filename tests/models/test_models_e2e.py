"""The whole model loop with real parts: scaffold, train, list, promote, validate, roll back.

A real MLflow server (``make tools``), the portal with a real GitOps repository, the
air-quality template scaffolded through the portal and merged, then the generated service
itself (from its runtime lock) training three times against MLflow. The Models pages list
the versions with their holdout metrics; a worse version fails the model validation check
and cannot be approved; a better one passes, another person approves it and main's pin
changes; a rollback brings the previous pin back. The tests run in order on one portal.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.config import Settings
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, CHECKOV_PATH, GRACE, require_tool, runtime
from tests.models.promote_support import portal_settings
from tests.templates.air_quality_app import LAHORE, LAHORE_PM25, train_versions

SERVICE = "lahore-air"
MODEL = f"{SERVICE}-air-quality"
METRIC = "holdout_relative_mae"


@dataclass
class Loop:
    """The portal, its settings and what the module found out so far."""

    client: TestClient
    settings: Settings
    versions: list[dict[str, Any]]


def remote_git(settings: Settings, *args: str) -> str:
    remote = settings.data_dir / "gitops" / "remote.git"
    return subprocess.run(
        ["git", "--git-dir", str(remote), *args], capture_output=True, text=True, check=True
    ).stdout


def main_pin(settings: Settings, environment: str) -> str:
    path = f"main:services/{SERVICE}/deploy/overlays/{environment}/model.yaml"
    document = yaml.safe_load(remote_git(settings, "show", path))
    (env,) = document["spec"]["template"]["spec"]["containers"][0]["env"]
    return str(env["value"])


def merge(client: TestClient, change_id: str, approver: dict[str, str] = GRACE) -> None:
    approved = client.post(f"/api/changes/{change_id}/approve", json={}, headers=approver)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "merged"


def checked(client: TestClient, response: Any) -> dict[str, Any]:
    """Run the checks of a proposed change; return the change as the API shows it."""
    assert response.status_code == 201, response.text
    change_id = response.json()["change"]["id"]
    run_pending(runtime(client).context)
    change: dict[str, Any] = client.get(f"/api/changes/{change_id}", headers=ADA).json()
    return change


def validation(change: dict[str, Any], environment: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        check for check in change["checks"] if check["name"] == f"model validation ({environment})"
    ]
    assert len(found) == 1, change["checks"]
    return found[0]


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory, mlflow_url: str) -> Iterator[Loop]:
    """Scaffold the service through the portal, merge it, train three versions."""
    require_tool("checkov")
    require_tool("promtool")
    base = tmp_path_factory.mktemp("model-loop")
    settings = portal_settings(base, checkov_path=CHECKOV_PATH, mlflow_url=mlflow_url)
    with TestClient(create_app(settings)) as client:
        answers = {"name": SERVICE, "owner": "platform-team", "description": "Lahore's air"}
        body = {"template": "air-quality-monitor", "answers": answers}
        response = client.post("/api/scaffold", json=body, headers=ADA)
        assert response.status_code == 202, response.text
        run_pending(runtime(client).context)
        merge(client, response.json()["id"])
        # The service as main has it, trained by its own code from its runtime lock.
        service_dir = base / "service"
        service_dir.mkdir()
        archive = subprocess.run(
            [
                "git",
                "--git-dir",
                str(settings.data_dir / "gitops" / "remote.git"),
                "archive",
                "main",
                f"services/{SERVICE}",
            ],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(service_dir)], input=archive, check=True)
        versions = train_versions(
            service_dir / "services" / SERVICE, mlflow_url, [LAHORE, LAHORE_PM25, LAHORE], base
        )
        yield Loop(client, settings, versions)


def test_the_pages_list_the_three_versions_with_their_metrics(loop: Loop) -> None:
    numbers = [model["registry"]["version"] for model in loop.versions]
    assert numbers == ["1", "2", "3"]
    listed = loop.client.get("/api/models", headers=ADA)
    assert listed.status_code == 200, listed.text
    detail = loop.client.get(f"/api/models/{MODEL}", headers=ADA).json()
    figures = {v["version"]: v["metrics"][METRIC] for v in detail["versions"]}
    assert figures["1"] == pytest.approx(1.0) and figures["3"] == pytest.approx(1.0)
    assert figures["2"] < 0.9  # LAHORE_PM25: the forecaster beats persistence
    page = loop.client.get(f"/models/{MODEL}", headers=ADA).text
    assert page.count('data-version="') >= 3 and SERVICE in page
    assert MODEL in loop.client.get("/models", headers=ADA).text
    assert main_pin(loop.settings, "prod") == ""  # generated unpinned


def test_the_first_pin_passes_then_a_worse_version_is_blocked(loop: Loop) -> None:
    client = loop.client
    first = checked(
        client,
        client.post(
            f"/api/models/{MODEL}/promote",
            json={"version": "2", "environment": "prod"},
            headers=ADA,
        ),
    )
    assert first["status"] == "ready", first
    assert validation(first, "prod")["status"] == "passed"
    merge(client, first["id"])
    assert main_pin(loop.settings, "prod") == "2"

    worse = checked(
        client,
        client.post(
            f"/api/models/{MODEL}/promote",
            json={"version": "3", "environment": "prod"},
            headers=ADA,
        ),
    )
    check = validation(worse, "prod")
    assert check["status"] == "failed", check
    said = check["summary"] + " ".join(f["message"] for f in check["findings"])
    assert "1" in said and METRIC in said  # both numbers and the metric are shown
    refused = client.post(f"/api/changes/{worse['id']}/approve", json={}, headers=GRACE)
    assert refused.status_code == 409, refused.text
    assert main_pin(loop.settings, "prod") == "2"


def test_a_better_version_is_approved_and_a_rollback_restores_the_pin(loop: Loop) -> None:
    client = loop.client
    pinned = checked(
        client,
        client.post(
            f"/api/models/{MODEL}/promote",
            json={"version": "1", "environment": "staging"},
            headers=ADA,
        ),
    )
    merge(client, pinned["id"])
    better = checked(
        client,
        client.post(
            f"/api/models/{MODEL}/promote",
            json={"version": "2", "environment": "staging"},
            headers=ADA,
        ),
    )
    assert validation(better, "staging")["status"] == "passed"
    own = client.post(f"/api/changes/{better['id']}/approve", json={}, headers=ADA)
    assert own.status_code == 403  # four eyes: the proposer may not approve
    merge(client, better["id"])
    assert main_pin(loop.settings, "staging") == "2"

    rollback = checked(
        client,
        client.post(f"/api/models/{MODEL}/rollback", json={"environment": "staging"}, headers=ADA),
    )
    assert rollback["status"] == "ready", rollback
    merge(client, rollback["id"])
    assert main_pin(loop.settings, "staging") == "1"
    assert main_pin(loop.settings, "prod") == "2"
    page = client.get(f"/models/{MODEL}", headers=ADA).text
    assert "rollback" in page.lower() and rollback["id"] in page  # the audit lists it
