"""Template updates end to end: a bundled template released v1 -> v2 -> v3, a fleet updated.

Three services are generated at v1 and land on main; one team edits a line the template
never touches, another the line v3 changes. The portal is then upgraded twice (its
templates folder holds v2, then v3, as a new portal release would), and an update of the
whole fleet to v3 is proposed through the API. Real git, real Copier, the real pipeline.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, GRACE, REPO, changes_runtime, runtime
from tests.fleet.support import DEPLOYMENT, edit, generate, release, resolved
from tests.fleet_versions import TEMPLATE_NAME

PAGES_ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def fleet_settings(settings: Settings, tmp_path: Path) -> Settings:
    templates = tmp_path / "templates"
    templates.mkdir()
    release(templates, "v1")
    proxied = settings.model_copy(
        update={
            "auth_mode": AuthMode.TRUSTED_HEADER,
            "catalog_paths": [str(REPO / "catalog")],
            "templates_dir": templates,
        }
    )
    initialise(proxied, gitops=True)
    return proxied


@pytest.fixture
def portal_at(fleet_settings: Settings) -> Iterator[Any]:
    """Yield a function starting the portal with the given template version released."""
    clients: list[TestClient] = []

    def start(version: str) -> TestClient:
        for client in clients:
            client.__exit__(None, None, None)
        clients.clear()
        release(fleet_settings.templates_dir, version)
        client = TestClient(create_app(fleet_settings))
        client.__enter__()
        clients.append(client)
        runtime(client).context.registry.all()  # publishes the release, as serve's warm-up does
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def _branch_files(client: TestClient, change: dict[str, Any]) -> dict[str, bytes]:
    repo = changes_runtime(client).gitops()
    prefix = f"services/{change['service']}/"
    paths = repo.list_files(change["commit"], prefix)
    return {p.removeprefix(prefix): repo.read_file(change["commit"], p) for p in paths}


def _push_outside(settings: Settings, tmp_path: Path, branch: str, path: str) -> str:
    """Commit a file on ``branch`` in a clone of the remote and push it, as a person would."""
    clone = tmp_path / "outside"
    remote = settings.data_dir / "gitops" / "remote.git"
    identity = ["-c", "user.name=Someone", "-c", "user.email=someone@example.com"]
    git = ["git", "-C", str(clone), *identity]
    subprocess.run(["git", "clone", "-q", "--branch", branch, str(remote), str(clone)], check=True)
    (clone / path).parent.mkdir(parents=True, exist_ok=True)
    (clone / path).write_text("Resolved in a clone.\n")
    subprocess.run([*git, "add", "--", path], check=True)
    subprocess.run([*git, "commit", "-qm", "Resolve in a clone"], check=True)
    subprocess.run([*git, "push", "-q", "origin", branch], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


@PAGES_ON_SQLITE
def test_a_fleet_is_updated_to_v3_with_a_conflict_shown_and_resolved(
    portal_at: Any, fleet_settings: Settings, tmp_path: Path
) -> None:
    client = portal_at("v1")
    for service in ("plain", "calm", "clash"):
        generate(client, service, tmp_path)
    edit(client, "calm", b"replicas: 1", b"replicas: 3")  # v3 leaves this line alone
    edit(client, "clash", b"memory: 128Mi", b"memory: 192Mi")  # v3 changes this one
    portal_at("v2")  # a portal release publishes v2.0.0 ...
    client = portal_at("v3")  # ... and the next one v3.0.0

    fleet = client.get(f"/api/templates/{TEMPLATE_NAME}/fleet").json()
    assert fleet["newest"] == "v3.0.0"
    assert {s["service"]: s["behind"] for s in fleet["services"]} == {
        "calm": 2,
        "clash": 2,
        "plain": 2,
    }
    by_name = {s["service"]: s["local_edits"]["modified"] for s in fleet["services"]}
    assert by_name == {"calm": [DEPLOYMENT], "clash": [DEPLOYMENT], "plain": []}

    # What v3 changes since v1: its commits, a default render's diff, the services it touches.
    hx = {"HX-Request": "true"}
    release = client.get(
        f"/templates/{TEMPLATE_NAME}/release?from=v1.0.0&to=v3.0.0", headers=hx
    ).text
    assert release.lstrip().startswith('<section class="card" id="release"')
    statuses = dict(re.findall(r'data-path="([^"]+)" data-status="(\w+)"', release))
    assert statuses == {
        "NOTES.md": "removed",
        "app/config.yaml": "removed",
        "app/settings.yaml": "added",
        "k8s/deployment.yaml": "modified",
        "k8s/kustomization.yaml": "modified",
        "k8s/pdb.yaml": "added",
    }
    assert 'data-touched="3"' in release and release.count("<li data-sha=") == 2
    hostile = client.get(f"/templates/{TEMPLATE_NAME}/release?from=--output=x&to=v3.0.0").text
    assert "Cannot compare --output=x and v3.0.0" in hostile

    refused = client.post(
        f"/api/templates/{TEMPLATE_NAME}/updates", json={"to_ref": "v9.0.0"}, headers=ADA
    )
    assert refused.status_code == 422
    assert refused.json()["errors"] == {"to_ref": f"{TEMPLATE_NAME} has no version v9.0.0"}
    accepted = client.post(
        f"/api/templates/{TEMPLATE_NAME}/updates", json={"to_ref": "v3.0.0"}, headers=ADA
    )
    assert accepted.status_code == 202, accepted.text
    batch = accepted.json()
    assert len(batch["changes"]) == 3 and batch["skipped"] == {}

    assert run_pending(runtime(client).context) == 3
    progress = client.get(batch["url"]).json()
    assert progress["done"] is True
    states = {entry["service"]: entry["state"] for entry in progress["services"]}
    assert states == {"plain": "ready", "calm": "ready", "clash": "conflicted"}
    assert progress["summary"] == {"ready": 2, "conflicted": 1}

    changes = {
        entry["service"]: client.get(f"/api/changes/{entry['change']}", headers=ADA).json()
        for entry in progress["services"]
    }
    calm = _branch_files(client, changes["calm"])
    assert b"replicas: 3" in calm[DEPLOYMENT] and b"memory: 256Mi" in calm[DEPLOYMENT]
    assert "k8s/pdb.yaml" in calm and "app/settings.yaml" in calm
    assert "app/config.yaml" not in calm and "NOTES.md" not in calm
    assert b"_commit: v3.0.0" in calm[".copier-answers.yml"]
    assert b"max_unavailable: 1" in calm[".copier-answers.yml"]
    clash = _branch_files(client, changes["clash"])
    assert b"<<<<<<< before updating" in clash[DEPLOYMENT]
    [conflicts] = [c for c in changes["clash"]["checks"] if c["name"] == "template conflicts"]
    assert conflicts["status"] == "failed"
    assert conflicts["findings"][0]["source"].startswith(f"services/clash/{DEPLOYMENT}:")
    assert "192Mi" in conflicts["findings"][0]["message"]

    # A failing check blocks approval; the team resolves the conflict, the checks pass.
    blocked = client.post(f"/api/changes/{changes['clash']['id']}/approve", json={}, headers=GRACE)
    assert blocked.status_code == 409, blocked.text
    fixed = resolved(clash[DEPLOYMENT].decode(), "              memory: 256Mi")
    answer = client.post(
        f"/api/changes/{changes['clash']['id']}/resolution",
        json={"files": {DEPLOYMENT: fixed}},
        headers=GRACE,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "checking" and answer.json()["revision"] == 2
    assert run_pending(runtime(client).context) == 1
    progress = client.get(batch["url"]).json()
    assert {e["service"]: e["state"] for e in progress["services"]}["clash"] == "ready"

    # The entity page's Template section, for one service.
    section = client.get("/fleet/services/calm", headers=hx).text
    assert f'data-template="{TEMPLATE_NAME}"' in section and "2 versions behind v3.0.0" in section
    assert f'href="/reviews/{changes["calm"]["id"]}"' in section
    assert "No template the portal offers" in client.get("/fleet/services/nope", headers=hx).text

    merged = client.post(f"/api/changes/{changes['clash']['id']}/approve", json={}, headers=GRACE)
    assert merged.status_code == 200, merged.text
    after = client.get(f"/api/templates/{TEMPLATE_NAME}/fleet").json()
    assert {s["service"]: s["version"] for s in after["services"]}["clash"] == "v3.0.0"
    # A resolution pushed to the branch outside the portal: never merged unchecked.
    calm = changes["calm"]
    pushed = _push_outside(fleet_settings, tmp_path, calm["branch"], "services/calm/NOTES.md")
    moved = client.post(f"/api/changes/{calm['id']}/approve", json={}, headers=GRACE)
    assert moved.status_code == 409 and f"moved to {pushed[:12]}" in moved.text
    rechecked = client.post(f"/api/changes/{calm['id']}/recheck", json={}, headers=GRACE)
    assert rechecked.status_code == 200, rechecked.text
    assert (rechecked.json()["commit"], rechecked.json()["status"]) == (pushed, "checking")
    assert run_pending(runtime(client).context) == 1
    nothing = client.post(f"/api/changes/{calm['id']}/recheck", json={}, headers=GRACE)
    assert nothing.status_code == 409 and "nothing was pushed" in nothing.text
    approved = client.post(f"/api/changes/{calm['id']}/approve", json={}, headers=GRACE)
    assert approved.status_code == 200, approved.text

    again = client.post(
        f"/api/templates/{TEMPLATE_NAME}/updates",
        json={"to_ref": "v3.0.0", "services": ["clash", "calm", "nope"]},
        headers=ADA,
    )
    assert again.status_code == 422
    assert again.json()["errors"] == {
        "services[2]": "'nope' is not a service this template generated"
    }
    skipped = client.post(
        f"/api/templates/{TEMPLATE_NAME}/updates",
        json={"to_ref": "v3.0.0", "services": ["clash", "calm"]},
        headers=ADA,
    ).json()
    assert skipped["changes"] == []
    assert skipped["skipped"] == {"clash": "already at v3.0.0", "calm": "already at v3.0.0"}
