"""Revising a change after "request changes": new answers, one more commit, checks again."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from portal.changes.models import AuditEvent, Change, ChangeStatus
from portal.clock import utcnow
from portal.config import Settings
from portal.scaffold.jobs import revision_of, run_pending
from tests.conftest import ADA, ALAN, GRACE, csrf_token, runtime
from tests.databases import PAGES_ON_SQLITE
from tests.scaffold.test_flow import scaffold

pytestmark = PAGES_ON_SQLITE


def git(remote: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(remote), *args], capture_output=True, text=True, check=True
    ).stdout


def sent_back(portal: TestClient, name: str) -> str:
    change_id = scaffold(portal, name, description="First try")
    assert run_pending(runtime(portal).context) == 1
    comment = {"comment": "Drop staging, and say what it does"}
    response = portal.post(f"/api/changes/{change_id}/request-changes", json=comment, headers=GRACE)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "changes_requested"
    return change_id


def test_a_revision_is_one_more_commit_on_the_branch_and_merges(
    portal: TestClient, settings: Settings
) -> None:
    change_id = sent_back(portal, "ledger")
    first = portal.get(f"/api/changes/{change_id}").json()["commit"]
    answers = {
        "name": "ledger",
        "owner": "platform-team",
        "description": "Keeps the ledger of payments",
        "environments": ["dev", "prod"],
    }

    response = portal.post(
        f"/api/changes/{change_id}/revise", json={"answers": answers}, headers=ADA
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "rendering"
    assert run_pending(runtime(portal).context) == 1

    change = portal.get(f"/api/changes/{change_id}").json()
    assert change["status"] == "ready" and change["revision"] == 2, change
    assert change["commit"] != first
    remote = settings.data_dir / "gitops" / "remote.git"
    assert git(remote, "rev-parse", "scaffold/ledger").strip() == change["commit"]
    base, previous = git(remote, "rev-parse", f"{change['commit']}^@").split()
    assert previous == first, "the branch fast-forwards from the reviewed revision"
    assert git(remote, "rev-parse", f"{first}^").strip() == base
    assert "Revision: 2" in git(remote, "log", "-1", "--format=%B", change["commit"])
    files = git(remote, "ls-tree", "-r", "--name-only", change["commit"]).split()
    assert "clusters/staging/services/ledger.yaml" not in files
    assert "services/ledger/deploy/overlays/staging/kustomization.yaml" not in files
    catalog = git(remote, "show", f"{change['commit']}:services/ledger/catalog-info.yaml")
    assert "Keeps the ledger of payments" in catalog
    names = {check["name"] for check in change["checks"]}
    assert "kustomize (prod)" in names and "kustomize (staging)" not in names

    page = portal.get(f"/reviews/{change_id}", headers=GRACE).text
    assert "revision 2" in page
    assert "clusters/staging/services/ledger.yaml" not in page  # the diff is the whole change
    assert "services/ledger/catalog-info.yaml" in page

    merged = portal.post(f"/api/changes/{change_id}/approve", json={}, headers=GRACE).json()
    assert merged["status"] == "merged"
    on_main = git(remote, "ls-tree", "-r", "--name-only", "main").split()
    assert "clusters/prod/services/ledger.yaml" in on_main
    assert "clusters/staging/services/ledger.yaml" not in on_main


def test_a_revision_already_pushed_is_not_rendered_twice(portal: TestClient) -> None:
    change_id = sent_back(portal, "vault")
    answers = {"name": "vault", "owner": "platform-team", "description": "Second try"}
    portal.post(f"/api/changes/{change_id}/revise", json={"answers": answers}, headers=ADA)
    context = runtime(portal).context
    run_pending(context)
    pushed = portal.get(f"/api/changes/{change_id}").json()["commit"]
    # A crash after the push, before the database recorded it: the job runs again.
    with Session(context.engine) as session:
        change = session.get(Change, change_id)
        assert change is not None
        change.status = ChangeStatus.RENDERING
        session.add(change)
        session.commit()

    assert run_pending(context) == 1

    again = portal.get(f"/api/changes/{change_id}").json()
    assert again["status"] == "ready" and again["commit"] == pushed
    assert context.gitops().resolve("scaffold/vault") == pushed


def test_who_may_revise_when_and_what(portal: TestClient) -> None:
    change_id = scaffold(portal, "quota", description="Counts quotas")
    run_pending(runtime(portal).context)
    answers = {"name": "quota", "owner": "platform-team", "description": "Counts"}
    url = f"/api/changes/{change_id}/revise"

    ready = portal.post(url, json={"answers": answers}, headers=ADA)
    assert ready.status_code == 409 and "ready cannot be revised" in ready.json()["detail"]
    portal.post(f"/api/changes/{change_id}/request-changes", json={"comment": "x"}, headers=GRACE)
    outsider = portal.post(url, json={"answers": answers}, headers=ALAN)
    assert outsider.status_code == 403 and "author" in outsider.json()["detail"]
    renamed = portal.post(url, json={"answers": {**answers, "name": "quota2"}}, headers=ADA)
    assert renamed.status_code == 422
    assert "keeps the name quota" in renamed.json()["errors"]["name"]
    bad = portal.post(url, json={"answers": {**answers, "port": 80}}, headers=ADA)
    assert bad.status_code == 422 and "1024" in bad.json()["errors"]["port"]
    no_comment = portal.post(
        f"/api/changes/{change_id}/request-changes", json={"comment": " "}, headers=GRACE
    )
    assert no_comment.status_code == 422

    change = portal.get(f"/api/changes/{change_id}").json()
    assert change["status"] == "changes_requested" and change["revision"] == 1
    # A teammate of the owning group may revise too (the author may be away).
    teammate = portal.post(url, json={"answers": answers}, headers=GRACE)
    assert teammate.status_code == 202
    assert revision_of("Scaffold x\n\nRevision: 7\nAnswers:\n") == 7
    assert revision_of("Scaffold x from an older portal\n") == 1


def test_the_revise_form_is_prefilled_and_shows_the_request(portal: TestClient) -> None:
    change_id = sent_back(portal, "ticker")

    change_page = portal.get(f"/reviews/{change_id}", headers=ADA).text
    assert f'href="/reviews/{change_id}/revise"' in change_page
    assert "/revise" not in portal.get(f"/reviews/{change_id}", headers=ALAN).text
    form = portal.get(f"/reviews/{change_id}/revise", headers=ADA)
    assert form.status_code == 200
    assert "Drop staging, and say what it does" in form.text
    assert re.search(r'name="name" value="ticker"[^>]*readonly', form.text)
    assert 'value="First try"' in form.text
    assert f'action="/reviews/{change_id}/revise"' in form.text

    token = csrf_token(portal, f"/reviews/{change_id}/revise")
    fields = {
        "csrf_token": token,
        "name": "ticker",
        "owner": "platform-team",
        "description": "Streams prices",
        "port": "80",
    }
    refused = portal.post(f"/reviews/{change_id}/revise", data=fields, headers=ADA)
    assert refused.status_code == 400 and "The change was not revised" in refused.text
    fields["port"] = "8081"
    done = portal.post(
        f"/reviews/{change_id}/revise", data=fields, headers=ADA, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == f"/reviews/{change_id}"
    assert portal.get(f"/api/changes/{change_id}").json()["status"] == "rendering"
    forbidden = portal.post(f"/reviews/{change_id}/revise", data=fields, headers=ALAN)
    assert forbidden.status_code in (403, 409)


def test_only_kinds_of_change_that_offer_a_revise_page_link_to_one(portal: TestClient) -> None:
    change_id = sent_back(portal, "gauge")
    assert stored_kind(portal, change_id) == "scaffold"  # what scaffolding registered
    page = portal.get(f"/reviews/{change_id}", headers=ADA).text
    assert f'href="/reviews/{change_id}/revise"' in page
    with Session(runtime(portal).context.engine) as session:
        change = session.get(Change, change_id)
        assert change is not None
        change.kind = "update"  # a kind of change no domain offers a revise page for
        session.add(change)
        session.commit()

    response = portal.get(f"/reviews/{change_id}", headers=ADA)

    assert response.status_code == 200 and "A reviewer asked for changes" in response.text
    assert "Revise the answers" not in response.text and "/revise" not in response.text


def stored_kind(portal: TestClient, change_id: str) -> str:
    with Session(runtime(portal).context.engine) as session:
        change = session.get(Change, change_id)
        assert change is not None
        return change.kind


def test_a_revision_waits_for_a_decision_under_way_and_writes_nothing(
    portal: TestClient,
) -> None:
    change_id = sent_back(portal, "meter")
    context = runtime(portal).context
    # A reviewer's rejection has claimed the change (it is deleting the branch right now).
    with Session(context.engine) as session:
        change = session.get(Change, change_id)
        assert change is not None
        change.decision, change.decision_token = "reject", "1" * 32
        change.decision_by, change.decision_at = "user:default/grace.hopper", utcnow()
        session.add(change)
        session.commit()
    answers = {"name": "meter", "owner": "platform-team", "description": "Second try"}

    response = portal.post(
        f"/api/changes/{change_id}/revise", json={"answers": answers}, headers=ADA
    )

    assert response.status_code == 409, response.text
    assert "cannot be revised" in response.json()["detail"]
    change_json = portal.get(f"/api/changes/{change_id}").json()
    assert change_json["status"] == "changes_requested" and change_json["revision"] == 1
    with Session(context.engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.change_id == change_id)).all()
        assert "revised" not in [event.action for event in events]


def test_two_revisions_at_once_make_one_revision(portal: TestClient) -> None:
    change_id = sent_back(portal, "tally")
    answers = {"name": "tally", "owner": "platform-team", "description": "Second try"}
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def revise() -> None:
        barrier.wait()
        url = f"/api/changes/{change_id}/revise"
        statuses.append(portal.post(url, json={"answers": answers}, headers=ADA).status_code)

    threads = [threading.Thread(target=revise) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [202, 409]
    assert portal.get(f"/api/changes/{change_id}").json()["revision"] == 2
