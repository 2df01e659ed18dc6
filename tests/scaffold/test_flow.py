"""End to end on real git: scaffold -> render -> checks -> approve -> main and the catalog."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from portal.catalog.models import Entity
from portal.changes.models import Change
from portal.config import Settings
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, ALAN, GRACE, runtime
from tests.databases import PAGES_ON_SQLITE
from tests.templates.service_venv import run_generated_tests


def git(remote: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(remote), *args], capture_output=True, text=True, check=True
    ).stdout


def scaffold(client: TestClient, name: str, **answers: object) -> str:
    body = {
        "template": "fastapi-service",
        "answers": {"name": name, "owner": "platform-team", "description": "A service", **answers},
    }
    response = client.post("/api/scaffold", json=body, headers=ADA)
    assert response.status_code == 202, response.text
    change_id: str = response.json()["id"]
    return change_id


def test_scaffold_review_approve_merge(
    portal: TestClient,
    settings: Settings,
    tmp_path: Path,
    checkov_executable: Path,
    promtool_executable: Path,  # every check must pass, "slo rules" included
) -> None:
    change_id = scaffold(portal, "payments", description="Takes payments")
    assert portal.get(f"/api/changes/{change_id}").json()["status"] == "rendering"
    assert run_pending(runtime(portal).context) == 1
    change = portal.get(f"/api/changes/{change_id}").json()
    assert change["status"] == "ready", change
    assert change["branch"] == "scaffold/payments" and change["commit"]
    checks = {check["name"]: check["status"] for check in change["checks"]}
    assert checks, "no checks ran"
    assert all(status in ("passed", "warning") for status in checks.values()), change["checks"]
    assert {"kustomize (dev)", "schema (prod)", "cost (staging)", "checkov", "slo rules"} <= set(
        checks
    )

    refused = portal.post(f"/api/changes/{change_id}/approve", json={}, headers=ADA)
    assert refused.status_code == 403 and "author" in refused.json()["detail"]
    outsider = portal.post(f"/api/changes/{change_id}/approve", json={}, headers=ALAN)
    assert outsider.status_code == 403
    approved = portal.post(f"/api/changes/{change_id}/approve", json={}, headers=GRACE)
    assert approved.status_code == 200, approved.text
    merged = approved.json()
    assert merged["status"] == "merged" and merged["approved_by"] == "user:default/grace.hopper"
    again = portal.post(f"/api/changes/{change_id}/approve", json={}, headers=GRACE)
    assert again.json()["merge_commit"] == merged["merge_commit"]

    remote = settings.data_dir / "gitops" / "remote.git"
    files = git(remote, "ls-tree", "-r", "--name-only", "main").split()
    for env in ("dev", "staging", "prod"):
        assert f"clusters/{env}/services/payments.yaml" in files
        assert f"services/payments/deploy/overlays/{env}/kustomization.yaml" in files
    assert "services/payments/.copier-answers.yml" in files
    parents = git(remote, "rev-list", "--parents", "-n", "1", "main").split()
    assert len(parents) == 3  # a merge commit: itself and two parents
    message = git(remote, "log", "-1", "--format=%B", merged["commit"])
    assert (
        "Template: fastapi-service" in message
        and "Requested-by: user:default/ada.lovelace" in message
    )

    with Session(runtime(portal).context.engine) as session:
        entity = session.exec(
            select(Entity).where(Entity.ref == "component:default/payments")
        ).one()
    assert entity.owner_ref == "group:default/platform-team"
    assert entity.source_key.endswith("#main:services/payments/catalog-info.yaml")

    # The rendered service's own tests pass, from what is now on main, in a fresh venv
    # installed from its lock.
    service = tmp_path / "checkout"
    service.mkdir()
    archive = subprocess.run(
        ["git", "--git-dir", str(remote), "archive", "main", "services/payments"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(service)], input=archive, check=True)
    result = run_generated_tests(service / "services" / "payments", "fastapi-service")
    assert result.returncode == 0, result.stdout + result.stderr


@PAGES_ON_SQLITE  # the whole flow runs on both databases above
def test_reject_deletes_the_branch(portal: TestClient, settings: Settings) -> None:
    change_id = scaffold(portal, "orders")
    run_pending(runtime(portal).context)
    remote = settings.data_dir / "gitops" / "remote.git"
    assert "scaffold/orders" in git(remote, "branch", "--list")
    rejected = portal.post(
        f"/api/changes/{change_id}/reject", json={"comment": "no"}, headers=GRACE
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert "scaffold/orders" not in git(remote, "branch", "--list")
    assert (
        portal.post(f"/api/changes/{change_id}/approve", json={}, headers=GRACE).status_code == 409
    )


@PAGES_ON_SQLITE
@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"name": "../etc"}, "name", ""),
        ({"name": "Payments"}, "name", ""),
        ({"name": "a" * 200}, "name", ""),
        ({"name": "svc", "description": "{{ 7 * 7 }}"}, "description", "template syntax"),
        ({"name": "svc", "owner": "no-such-team"}, "owner", "not a Group"),
        ({"name": "svc", "owner": "user:ada.lovelace"}, "owner", "not a Group"),
        ({"name": "svc", "system": "nope"}, "system", "not a System"),
        ({"name": "portal"}, "name", "already has a component"),
    ],
)
def test_bad_input_gets_a_field_error_and_writes_nothing(
    portal: TestClient, settings: Settings, answers: dict[str, str], field: str, message: str
) -> None:
    base = {"owner": "platform-team", "description": "A service"}
    body = {"template": "fastapi-service", "answers": {**base, **answers}}
    response = portal.post("/api/scaffold", json=body, headers=ADA)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert field in errors and message in errors[field]
    with Session(runtime(portal).context.engine) as session:
        assert session.exec(select(Change)).all() == []
    remote = settings.data_dir / "gitops" / "remote.git"
    assert git(remote, "branch", "--list").split() == ["*", "main"]


@PAGES_ON_SQLITE
def test_unregistered_template_and_anonymous_requests(portal: TestClient) -> None:
    body = {"template": "nope", "answers": {"name": "svc", "owner": "platform-team"}}
    response = portal.post("/api/scaffold", json=body, headers=ADA)
    assert response.status_code == 422 and "template" in response.json()["errors"]
    anonymous = portal.post("/api/scaffold", json=body)
    assert anonymous.status_code == 401


# PostgreSQL only: it is where replicas decide at once (row locks, not SQLite's one writer);
# the git side, the same on both, is most of the test's time. Twelve requests on eight
# threads, then twelve approvals at once: every request and every merge races another.
CONCURRENT = 12


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_scaffolds_all_land(portal: TestClient, settings: Settings) -> None:
    names = [f"svc-{index:02d}" for index in range(CONCURRENT)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda name: scaffold(portal, name), names))
    assert len(set(ids)) == CONCURRENT
    assert run_pending(runtime(portal).context) == CONCURRENT
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(
                lambda cid: portal.post(f"/api/changes/{cid}/approve", json={}, headers=GRACE), ids
            )
        )
    assert [r.status_code for r in results] == [200] * CONCURRENT, [
        r.text for r in results if r.status_code != 200
    ]
    remote = settings.data_dir / "gitops" / "remote.git"
    files = set(git(remote, "ls-tree", "-r", "--name-only", "main").split())
    for name in names:
        assert f"services/{name}/catalog-info.yaml" in files
        assert f"clusters/prod/services/{name}.yaml" in files
    subprocess.run(
        ["git", "--git-dir", str(remote), "fsck", "--strict"], check=True, capture_output=True
    )
