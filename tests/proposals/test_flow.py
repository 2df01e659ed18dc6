"""An edit to an existing service, proposed with an API token: checks, review, merge, conflicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlmodel import Session

from portal.changes.models import Change
from portal.changes.store import audit_of
from portal.config import Settings
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, ALAN, GRACE, runtime
from tests.databases import SQLITE_ONLY
from tests.proposals.seed import SERVICE, git, push_to_main, remote_of, seed_service

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

OVERLAY = f"services/{SERVICE}/deploy/overlays/prod/kustomization.yaml"
DEPLOYMENT = f"services/{SERVICE}/deploy/base/deployment.yaml"
PROMOTE: dict[str, Any] = {
    "path": OVERLAY,
    "patch": {
        "type": "strategic-merge",
        "target": {"kind": "Kustomization"},
        "patch": {"images": [{"name": "ghcr.io/example/air-quality", "newTag": "1.5.0"}]},
    },
}
LIMIT: dict[str, Any] = {
    "path": DEPLOYMENT,
    "patch": {
        "type": "json6902",
        "target": {"kind": "Deployment", "name": SERVICE},
        "patch": [
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/resources/limits/memory",
                "value": "768Mi",
            }
        ],
    },
}


@pytest.fixture
def main_clone(portal: TestClient, settings: Settings, tmp_path: Path) -> Path:
    work = tmp_path / "someone"
    seed_service(portal, settings, work)
    return work


def new_token(portal: TestClient, headers: dict[str, str], **body: Any) -> str:
    response = portal.post(
        "/api/tokens", json={"name": "promoter", "services": [SERVICE], **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def propose(portal: TestClient, headers: dict[str, str], *edits: dict[str, Any]) -> Any:
    body = {
        "service": SERVICE,
        "title": "Promote air-quality 1.5.0 to prod",
        "reason": "1.5.0 ran a week in staging within its SLO.",
        "evidence": [
            {"label": "staging burn rate", "url": "https://grafana.example.com/d/aq"},
            {"label": "summary", "text": "no errors in 7 days"},
        ],
        "edits": list(edits),
    }
    return portal.post("/api/changes", json=body, headers=headers)


def main_file(settings: Settings, path: str) -> str:
    return git(remote_of(settings), "show", f"main:{path}")


def test_a_token_proposes_a_person_approves_and_main_has_the_edit(
    portal: TestClient, settings: Settings, main_clone: Path
) -> None:
    token = new_token(portal, GRACE)
    response = propose(portal, bearer(token), PROMOTE, LIMIT)
    assert response.status_code == 202, response.text
    proposed = response.json()
    assert proposed["status"] == "checking"
    assert proposed["branch"] == f"change/{SERVICE}/{proposed['id']}"

    assert run_pending(runtime(portal).context) == 1
    change = portal.get(proposed["url"]).json()
    assert change["status"] == "ready", change
    assert change["kind"] == "edit" and change["proposed_by"].endswith("(promoter)")
    assert change["requester"] == "user:default/grace.hopper"
    assert change["reason"] and [item["label"] for item in change["evidence"]] == [
        "staging burn rate",
        "summary",
    ]
    checks = {check["name"]: check["status"] for check in change["checks"]}
    assert {"kustomize (dev)", "kustomize (prod)", "schema (prod)", "collisions"} <= set(checks)
    assert all(status in ("passed", "warning") for status in checks.values()), change["checks"]

    page = portal.get(f"/reviews/{proposed['id']}", headers={**ADA, "Accept": "text/html"}).text
    assert 'id="proposal"' in page and "(promoter)" in page
    assert "1.5.0 ran a week in staging within its SLO." in page
    assert 'href="https://grafana.example.com/d/aq" rel="noopener noreferrer nofollow"' in page

    # The token proposes, never decides; its creator is the change's author.
    for action in ("approve", "reject", "request-changes"):
        refused = portal.post(
            f"/api/changes/{proposed['id']}/{action}", json={"comment": "x"}, headers=bearer(token)
        )
        assert refused.status_code == 403, refused.text
        assert "propose" in refused.json()["detail"]
    by_creator = portal.post(f"/api/changes/{proposed['id']}/approve", json={}, headers=GRACE)
    assert by_creator.status_code == 403 and "author" in by_creator.json()["detail"]
    outsider = portal.post(f"/api/changes/{proposed['id']}/approve", json={}, headers=ALAN)
    assert outsider.status_code == 403

    approved = portal.post(f"/api/changes/{proposed['id']}/approve", json={}, headers=ADA)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "merged"

    overlay = yaml.safe_load(main_file(settings, OVERLAY))
    assert overlay["images"] == [{"name": "ghcr.io/example/air-quality", "newTag": "1.5.0"}]
    deployment = main_file(settings, DEPLOYMENT)
    assert "memory: 768Mi" in deployment
    # Only the patched lines changed: the comment of the file is still there.
    assert "# no replicas: the HorizontalPodAutoscaler owns the scale" in deployment
    message = git(remote_of(settings), "log", "-1", "--format=%B", proposed["commit"])
    assert message.startswith(f"Edit {SERVICE}: Promote air-quality 1.5.0 to prod")
    assert "Requested-by: user:default/grace.hopper" in message

    with Session(runtime(portal).context.engine) as session:
        stored = session.get(Change, proposed["id"])
        assert stored is not None and stored.kind == "edit"
        assert stored.proposed_by is not None and stored.proposed_by.startswith("token:")
        assert stored.reason == "1.5.0 ran a week in staging within its SLO."
        assert stored.evidence == [
            {"label": "staging burn rate", "url": "https://grafana.example.com/d/aq"},
            {"label": "summary", "text": "no errors in 7 days"},
        ]
        actions = [event.action for event in audit_of(session, proposed["id"])]
    assert actions == ["proposed", "checked", "approved"]


def test_a_person_of_the_owning_team_may_propose_others_may_not(
    portal: TestClient, main_clone: Path
) -> None:
    assert propose(portal, ALAN, PROMOTE).status_code == 403
    response = propose(portal, GRACE, PROMOTE)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("services/other/deploy/base/deployment.yaml", "outside services/air-quality/"),
        ("clusters/dev/services/other.yaml", "outside services/air-quality/"),
        ("clusters/dev/infrastructure.yaml", "outside services/air-quality/"),
        ("services/air-quality/../other/x.yaml", "'..' path segments are refused"),
        ("/services/air-quality/x.yaml", "absolute paths are refused"),
        ("services/air-quality/.git/config", "through .git"),
        ("clusters/qa/services/air-quality.yaml", "no cluster folder clusters/qa"),
        ("services/air-quality/deploy/base", "is a folder on main"),
    ],
)
def test_edits_outside_the_service_are_refused_with_the_path_named(
    portal: TestClient, settings: Settings, main_clone: Path, path: str, named: str
) -> None:
    token = new_token(portal, GRACE)
    before = git(remote_of(settings), "branch", "--list")
    response = propose(portal, bearer(token), PROMOTE, {"path": path, "content": "x: 1\n"})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert list(errors) == ["edits[1].path"], errors
    assert named in errors["edits[1].path"]
    assert git(remote_of(settings), "branch", "--list") == before  # nothing pushed


def test_a_symbolic_link_on_main_is_not_followed(
    portal: TestClient, settings: Settings, main_clone: Path
) -> None:
    (main_clone / "services" / SERVICE / "shared").symlink_to("../../clusters")
    push_to_main(settings, main_clone, {}, "Link out of the service")
    response = propose(
        portal, GRACE, {"path": f"services/{SERVICE}/shared/dev/x.yaml", "content": "a: 1\n"}
    )
    assert response.status_code == 422
    assert "symbolic link" in response.json()["errors"]["edits[0].path"]


def test_patch_problems_name_the_edit(portal: TestClient, main_clone: Path) -> None:
    missing = {**LIMIT, "patch": {**LIMIT["patch"], "target": {"kind": "Deployment", "name": "x"}}}
    bad_op = {
        **LIMIT,
        "patch": {**LIMIT["patch"], "patch": [{"op": "remove", "path": "/spec/nothing"}]},
    }
    not_yaml = {"path": f"services/{SERVICE}/slo.yaml", "content": "a: [1\n"}
    response = propose(portal, GRACE, missing, bad_op, not_yaml)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert "no Deployment/x in the file" in errors["edits[0].patch.target"]
    assert "nothing" in errors["edits[1].patch.patch"]
    assert "not valid YAML" in errors["edits[2].content"]
    nothing = propose(portal, GRACE, {"path": OVERLAY, "content": main_file_of(portal)})
    assert nothing.status_code == 422 and "change nothing" in nothing.json()["errors"]["edits"]


def main_file_of(portal: TestClient) -> str:
    repo = runtime(portal).context.gitops()
    return repo.read_file(repo.refresh(), OVERLAY).decode()


def test_main_changed_the_same_lines_so_the_change_is_conflicted(
    portal: TestClient, settings: Settings, main_clone: Path
) -> None:
    proposed = propose(portal, GRACE, PROMOTE).json()
    run_pending(runtime(portal).context)
    overlay = (main_clone / OVERLAY).read_text()
    push_to_main(settings, main_clone, {OVERLAY: overlay.replace('"1.4.2"', '"1.4.3"')}, "Hotfix")
    main_before = git(remote_of(settings), "rev-parse", "main")

    refused = portal.post(f"/api/changes/{proposed['id']}/approve", json={}, headers=ADA)
    assert refused.status_code == 409, refused.text
    assert "main changed the same lines" in refused.json()["detail"]
    assert OVERLAY in refused.json()["detail"]
    change = portal.get(proposed["url"]).json()
    assert change["status"] == "conflicted"
    page = portal.get(f"/reviews/{proposed['id']}", headers={**ADA, "Accept": "text/html"}).text
    assert 'data-status="conflicted"' in page and "never merged silently" in page
    path = f"/reviews/{proposed['id']}"
    assert f'action="{path}/reject"' in page and f'action="{path}/approve"' not in page
    assert git(remote_of(settings), "rev-parse", "main") == main_before  # never merged
    assert 'newTag: "1.4.3"' in main_file(settings, OVERLAY)
    again = portal.post(f"/api/changes/{proposed['id']}/approve", json={}, headers=ADA)
    assert again.status_code == 409 and "conflicted" in again.json()["detail"]
    rejected = portal.post(f"/api/changes/{proposed['id']}/reject", json={}, headers=ADA)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


def test_main_moved_elsewhere_and_the_merge_is_computed_on_the_new_main(
    portal: TestClient, settings: Settings, main_clone: Path
) -> None:
    proposed = propose(portal, GRACE, PROMOTE, LIMIT).json()
    run_pending(runtime(portal).context)
    deployment = (main_clone / DEPLOYMENT).read_text()
    moved = deployment.replace("cpu: 250m", "cpu: 300m")  # other lines of an edited file
    push_to_main(
        settings, main_clone, {DEPLOYMENT: moved, "infrastructure/NOTES.md": "n\n"}, "Elsewhere"
    )
    approved = portal.post(f"/api/changes/{proposed['id']}/approve", json={}, headers=ADA)
    assert approved.status_code == 200, approved.text
    merged = main_file(settings, DEPLOYMENT)
    assert "cpu: 300m" in merged and "memory: 768Mi" in merged
    assert main_file(settings, "infrastructure/NOTES.md") == "n\n"
    assert 'newTag: "1.5.0"' in main_file(settings, OVERLAY)
