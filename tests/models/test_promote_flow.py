"""Promote and roll back a model version, for real: refusals, the pin change, its check, the merge.

A real GitOps repository with the test service on main (its catalog-info.yaml naming the
model), the real kustomize and review flow; only the registry is the in-memory fake. The
tests of this module run in order on one app, as a team would: promote, try a worse
version, promote a better one, roll back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from portal.proposals.promote_model_routes import app_model_registry
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, ALAN, GRACE, csrf_token, runtime
from tests.models.promote_support import (
    HTML,
    MODEL,
    OVERLAY,
    App,
    checks_of,
    main_pin,
    promote,
    promote_app,
    stored,
)
from tests.proposals.seed import SERVICE, git, remote_of


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One app for the module; its tests run in order."""
    yield from promote_app(Path(tmp_path_factory.mktemp("promote")))


def test_refusals_name_the_reason_and_write_nothing(app: App) -> None:
    client, settings, registry = app
    branches = git(remote_of(settings), "branch", "--list")

    assert promote(client, {}, version="2", environment="prod").status_code == 401
    calls = registry.calls
    outsider = promote(client, ALAN, version="2", environment="prod")
    assert outsider.status_code == 403
    assert registry.calls == calls  # refused before the registry is asked
    assert "only members of group:default/platform-team" in outsider.json()["detail"]
    unknown = promote(client, GRACE, name="nobody-model", version="2", environment="prod")
    assert unknown.status_code == 404 and "portal.platform/models" in unknown.json()["detail"]

    cases = {
        ("9", "prod"): ("version", f"{MODEL} has no version 9 (versions: 1, 2, 3, 4, 5)"),
        ("5", "prod"): ("version", "version 5 is PENDING_REGISTRATION, not READY"),
        ("v2", "prod"): ("version", "'v2' is not a version number"),
        ("2", "qa"): (
            "environment",
            "'qa' is not an environment of the GitOps repository (dev, staging, prod",
        ),
        ("2", "staging"): ("environment", f"{SERVICE} has no overlay for staging on main"),
    }
    for (version, environment), (field, message) in cases.items():
        refused = promote(client, GRACE, version=version, environment=environment)
        assert refused.status_code == 422, refused.text
        assert message in refused.json()["errors"][field], refused.json()

    registry.unavailable = "connection refused"
    down = promote(client, GRACE, version="2", environment="prod")
    registry.unavailable = None
    assert down.status_code == 503
    assert (
        down.json()["detail"]
        == "the model registry at fake://registry did not answer: connection refused"
    )

    client.app.dependency_overrides[app_model_registry] = lambda: None  # type: ignore[attr-defined]
    unset = promote(client, GRACE, version="2", environment="prod")
    client.app.dependency_overrides[app_model_registry] = lambda: registry  # type: ignore[attr-defined]
    assert unset.status_code == 503 and "PORTAL_MLFLOW_URL" in unset.json()["detail"]

    forged = client.post(
        f"/models/{MODEL}/promote",
        data={"version": "2", "environment": "prod"},
        headers={**GRACE, **HTML},
    )
    assert forged.status_code == 403  # a form without the CSRF token
    nothing = client.post(
        f"/api/models/{MODEL}/rollback", json={"environment": "prod"}, headers=GRACE
    )
    assert nothing.status_code == 409
    assert "serves no version of" in nothing.json()["detail"]
    assert git(remote_of(settings), "branch", "--list") == branches


def test_a_promotion_is_a_change_of_the_pin_checked_and_merged(
    app: App,
) -> None:
    client, settings, _ = app
    response = promote(client, GRACE, version="2", environment="prod")
    assert response.status_code == 201, response.text
    body = response.json()
    change_id = body["change"]["id"]
    assert body["url"] == f"/api/changes/{change_id}"
    assert body["change"]["model"] == {
        "name": MODEL,
        "environment": "prod",
        "version": "2",
        "from_version": "",
        "action": "promote",
    }
    branch = body["change"]["branch"]
    pin = git(remote_of(settings), "show", f"{branch}:{OVERLAY}/prod/model.yaml")
    assert "MODEL_VERSION" in pin and 'value: "2"' in pin
    assert pin.startswith("# The model version the prod environment of air-quality serves")
    kustomization = yaml.safe_load(
        git(remote_of(settings), "show", f"{branch}:{OVERLAY}/prod/kustomization.yaml")
    )
    assert kustomization["patches"] == [{"path": "scale.yaml"}, {"path": "model.yaml"}]
    files = git(remote_of(settings), "diff", "--name-only", f"main...{branch}").split()
    assert files == [f"{OVERLAY}/prod/kustomization.yaml", f"{OVERLAY}/prod/model.yaml"]

    change = stored(client, change_id)
    assert change.title == f"Promote {MODEL} version 2 to prod (unpinned)"
    assert "Candidate version 2: holdout_mae 0.9." in (change.reason or "")
    evidence = {item["label"]: item for item in change.evidence or []}
    assert evidence["candidate version 2"]["text"].startswith(
        "version 2: holdout_mae 0.9; created 2025-03-02"
    )
    assert evidence["model page"]["url"] == f"http://testserver/models/{MODEL}"

    assert run_pending(runtime(client).context) == 1
    checks = checks_of(client, change_id)
    check = checks["model validation (prod)"]
    assert check["status"] == "passed", check
    assert "main serves no registry version" in check["summary"]
    assert "model validation (dev)" not in checks  # dev's pin did not move
    approved = client.post(f"/api/changes/{change_id}/approve", json={}, headers=ADA)
    assert approved.status_code == 200, approved.text
    assert main_pin(settings, "prod") == "2"


def test_the_version_already_serving_is_not_promoted_again(
    app: App,
) -> None:
    client, _, _ = app
    again = promote(client, GRACE, version="2", environment="prod")
    assert again.status_code == 422
    assert (
        again.json()["errors"]["version"]
        == f"{MODEL} version 2 already serves in prod: nothing to promote"
    )


def test_a_worse_version_fails_its_validation_and_cannot_be_approved(
    app: App,
) -> None:
    client, settings, _ = app
    token = csrf_token(client, "/catalog")
    form = client.post(
        f"/models/{MODEL}/promote",
        data={"csrf_token": token, "version": "3", "environment": "prod"},
        headers={**GRACE, **HTML},
        follow_redirects=False,
    )
    assert form.status_code == 303, form.text
    found = re.fullmatch(r"/reviews/([0-9a-f]+)", form.headers["location"])
    assert found is not None
    change_id = found.group(1)
    run_pending(runtime(client).context)
    check = checks_of(client, change_id)["model validation (prod)"]
    assert check["status"] == "failed"
    assert "candidate version 3 holdout_mae 1.2 vs serving version 2 0.9" in check["summary"]
    assert check["findings"][0]["source"] == "deploy/overlays/prod/model.yaml"
    refused = client.post(f"/api/changes/{change_id}/approve", json={}, headers=ADA)
    assert refused.status_code == 409, refused.text
    assert "model validation (prod)" in refused.json()["detail"]
    assert main_pin(settings, "prod") == "2"
    rejected = client.post(f"/api/changes/{change_id}/reject", json={}, headers=ADA)
    assert rejected.status_code == 200


def test_form_errors_are_pages(app: App) -> None:
    client, _, _ = app
    token = csrf_token(client, "/catalog")
    page = client.post(
        f"/models/{MODEL}/promote",
        data={"csrf_token": token, "version": "2", "environment": "prod"},
        headers={**GRACE, **HTML},
    )
    assert page.status_code == 422
    assert "already serves in prod" in page.text and "<html" in page.text


def test_a_better_version_passes_and_a_rollback_returns_to_the_one_before(
    app: App,
) -> None:
    client, settings, registry = app
    better = promote(client, GRACE, version="4", environment="prod").json()["change"]["id"]
    run_pending(runtime(client).context)
    assert checks_of(client, better)["model validation (prod)"]["status"] == "passed"
    assert client.post(f"/api/changes/{better}/approve", json={}, headers=ADA).status_code == 200
    assert main_pin(settings, "prod") == "4"

    registry.unavailable = "connection refused"  # a rollback does not need the registry
    response = client.post(
        f"/api/models/{MODEL}/rollback", json={"environment": "prod"}, headers=GRACE
    )
    registry.unavailable = None
    assert response.status_code == 201, response.text
    rollback = response.json()["change"]
    assert rollback["model"] == {
        "name": MODEL,
        "environment": "prod",
        "version": "2",
        "from_version": "4",
        "action": "rollback",
    }
    assert rollback["title"] == f"Roll back {MODEL} in prod: version 4 -> 2"
    change = stored(client, rollback["id"])
    assert f"change {better}" in (change.reason or "")
    assert "Rolling back to version 2 (no figures from the registry)." in (change.reason or "")
    labels = [item["label"] for item in change.evidence or []]
    assert "model registry" in labels  # says the figures could not be read
    run_pending(runtime(client).context)
    check = checks_of(client, rollback["id"])["model validation (prod)"]
    assert check["status"] == "passed"
    assert check["summary"] == "rollback: no validation needed (version 4 -> 2)"
    by_author = client.post(f"/api/changes/{rollback['id']}/approve", json={}, headers=GRACE)
    assert by_author.status_code == 403  # still a reviewer's
    assert (
        client.post(f"/api/changes/{rollback['id']}/approve", json={}, headers=ADA).status_code
        == 200
    )
    assert main_pin(settings, "prod") == "2"
