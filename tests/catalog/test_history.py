"""An entity's History: real git (changes proposed, approved and merged by the portal), real DB.

The changes go through the portal's own GitOps writer and ``approve`` (merge, audit,
catalog import); commits no change made are written into the remote with git fast-import,
as a person pushing by hand would leave them.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.catalog.history import (
    MAX_PAGE,
    PAGE_SIZE,
)
from portal.changes.models import EDIT_KIND, Change, ChangeStatus, CheckRun
from portal.changes.store import audit
from portal.config import Settings
from portal.integrations.gitops import GitOpsRepo, GitOpsUnavailableError
from portal.review.decide import approve
from tests.conftest import changes_runtime
from tests.databases import PAGES_ON_SQLITE

TEAM = "group:default/platform-team"
ALAN = "user:default/alan.turing"
GRACE = Identity("user:default/grace.hopper", "Grace", frozenset({TEAM}))
ADA = Identity("user:default/ada.lovelace", "Ada", frozenset({TEAM}))
ROW = re.compile(r'<tr data-sha="(?P<sha>[0-9a-f]{40})">(?P<body>.*?)</tr>', re.S)


@dataclass(frozen=True)
class Portal:
    client: TestClient
    engine: Engine
    settings: Settings
    gitops: GitOpsRepo

    @property
    def remote(self) -> Path:
        return self.settings.data_dir / "gitops" / "remote.git"


@pytest.fixture
def app(portal: TestClient) -> Portal:
    state = portal.app.state  # type: ignore[attr-defined]
    return Portal(portal, state.engine, state.settings, changes_runtime(portal).gitops())


def catalog_info(name: str) -> bytes:
    return (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: experimental\n"
        "  owner: platform-team\n"
    ).encode()


def store_change(app: Portal, change: Change, proposer: str, action: str) -> str:
    with Session(app.engine) as session:
        session.add(change)
        session.flush()
        audit(session, change.id, proposer, action, "test")
        for check in ("schema (dev)", "checkov"):  # a ready change has passed its checks
            session.add(CheckRun(change_id=change.id, name=check, status="passed", summary="ok"))
        session.commit()
        return change.id


def scaffold(app: Portal, name: str) -> str:
    """Propose a new service as a scaffold does (requested by Alan); return the change id."""
    files = {f"services/{name}/catalog-info.yaml": catalog_info(name)}
    branch = f"scaffold/{name}"
    sha = app.gitops.create_branch(branch, files, f"Add {name}\n", ("Alan", "alan@example.org"))
    change = Change(
        title=f"Add {name}",
        template="fastapi-service",
        service=name,
        owner_ref=TEAM,
        requester_ref=ALAN,
        answers={"name": name},
        branch=branch,
        commit_sha=sha,
        status=ChangeStatus.READY,
    )
    return store_change(app, change, ALAN, "requested")


def edit(app: Portal, name: str, path: str, text: str, *, via: str | None = None) -> str:
    """Propose an edit of one file (through an API token when ``via``); return the change id."""
    base = app.gitops.refresh()
    branch = f"edit/{name}-{path.replace('/', '-')}-{len(text)}"
    sha = app.gitops.create_edit_branch(
        branch, base, {f"services/{name}/{path}": text.encode()}, f"Edit {path}\n", ("Alan", "a@x")
    )
    change = Change(
        kind=EDIT_KIND,
        title=f"Edit {path}",
        template="",
        service=name,
        owner_ref=TEAM,
        requester_ref=ALAN,
        answers={},
        branch=branch,
        commit_sha=sha,
        status=ChangeStatus.READY,
        proposed_by=via,
    )
    return store_change(app, change, "token:abc123" if via else ALAN, "proposed")


@dataclass(frozen=True)
class Merged:
    id: str
    merge_sha: str


def approve_change(app: Portal, change_id: str, reviewer: Identity) -> Merged:
    with Session(app.engine) as session:
        change = session.get(Change, change_id)
        assert change is not None
        approve(session, change, reviewer, app.gitops, app.settings)
        assert change.status is ChangeStatus.MERGED, change.error
        assert change.merge_sha is not None
        return Merged(change.id, change.merge_sha)


def push_by_hand(app: Portal, commits: list[dict[str, str]], author: str = "Hand Pusher") -> None:
    """Append commits to the remote's main with git fast-import (no change, no portal)."""
    remote = str(app.remote)
    main = subprocess.run(
        ["git", "--git-dir", remote, "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stream = bytearray()
    for index, files in enumerate(commits):
        message = f"By hand {index}\n".encode()
        stream += b"commit refs/heads/main\n"
        stream += f"author {author} <hand@example.org> {1_800_000_000 + index} +0200\n".encode()
        stream += f"committer {author} <hand@example.org> {1_800_000_000 + index} +0200\n".encode()
        stream += f"data {len(message)}\n".encode() + message
        if index == 0:
            stream += f"from {main}\n".encode()
        for path, text in files.items():
            data = text.encode()
            stream += f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"
    subprocess.run(
        ["git", "--git-dir", remote, "fast-import", "--quiet"],
        input=bytes(stream),
        check=True,
        capture_output=True,
        timeout=120,
    )


def rows(html: str) -> list[tuple[str, str]]:
    return [(match["sha"], match["body"]) for match in ROW.finditer(html)]


def history(app: Portal, name: str, query: str = "", **headers: str) -> str:
    response = app.client.get(f"/catalog/component/default/{name}/history{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response.text


def test_history_links_each_commit_to_its_change_proposer_and_approver(app: Portal) -> None:
    added = approve_change(app, scaffold(app, "ledger"), GRACE)
    edited = approve_change(app, edit(app, "ledger", "app.py", "print(1)\n"), ADA)
    by_token = approve_change(
        app, edit(app, "ledger", "app.py", "print(22)\n", via="token:abc123 (ci)"), GRACE
    )
    push_by_hand(app, [{"services/ledger/notes.md": "by hand\n"}])
    push_by_hand(app, [{"services/other/notes.md": "elsewhere\n"}])  # another service

    found = rows(history(app, "ledger"))

    hand = subprocess.run(
        ["git", "--git-dir", str(app.remote), "rev-parse", "main~1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    expected = [hand, by_token.merge_sha, edited.merge_sha, added.merge_sha]
    assert [sha for sha, _ in found] == expected  # newest first, the other service's left out
    body = dict(found)
    # A change's row: its link, who proposed it, who approved it, its diff on the change page.
    assert f'data-change="{added.id}"' in body[added.merge_sha]
    assert f'data-proposer="{ALAN}"' in body[added.merge_sha]
    assert f'data-approver="{GRACE.user_ref}"' in body[added.merge_sha]
    assert f'href="/reviews/{added.id}#diff"' in body[added.merge_sha]
    assert f'data-approver="{ADA.user_ref}"' in body[edited.merge_sha]
    assert "via token:abc123 (ci)" in body[by_token.merge_sha]
    assert f'data-proposer="{ALAN}"' in body[by_token.merge_sha]  # the accountable person
    # The commit pushed by hand: its subject, author and date, and its own diff.
    assert "By hand 0" in body[hand] and "Hand Pusher" in body[hand]
    assert "2027-01-15 08:00 UTC" in body[hand]  # 1,800,000,000 s, written at +0200
    assert "data-change" not in body[hand]
    assert f'href="/reviews/services/ledger/commits/{hand}"' in body[hand]


@PAGES_ON_SQLITE
def test_the_entity_page_loads_history_on_reveal_without_reading_git(app: Portal) -> None:
    change = approve_change(app, scaffold(app, "lazy"), GRACE)
    page = app.client.get("/catalog/component/default/lazy")
    assert page.status_code == 200
    assert 'hx-get="/catalog/component/default/lazy/history" hx-trigger="revealed"' in page.text
    assert change.merge_sha[:10] not in page.text  # no commit is read for the page itself
    fragment = history(app, "lazy", **{"HX-Request": "true"})
    assert fragment.lstrip().startswith('<section class="card" id="history"')
    assert "<html" not in fragment and change.merge_sha in fragment
    full = history(app, "lazy")
    assert "<html" in full and change.merge_sha in full  # the same, without JavaScript


@PAGES_ON_SQLITE
def test_a_thousand_commits_show_twenty_a_page(app: Portal) -> None:
    added = approve_change(app, scaffold(app, "busy"), GRACE)
    push_by_hand(app, [{"services/busy/counter": f"{n}\n"} for n in range(1000)])

    first = history(app, "busy", **{"HX-Request": "true"})
    assert len(rows(first)) == PAGE_SIZE
    assert "By hand 999" in first and "By hand 980" in first and "By hand 979" not in first
    assert 'href="/catalog/component/default/busy/history?page=2"' in first
    assert "Newer commits" not in first

    # 1,001 commits: page 51 holds the scaffold's merge alone, and nothing older follows.
    last = history(app, "busy", "?page=51")
    assert [sha for sha, _ in rows(last)] == [added.merge_sha]
    assert "?page=50" in last and "Older commits" not in last
    beyond = history(app, "busy", "?page=52")
    assert rows(beyond) == [] and "the history is shorter" in beyond


@PAGES_ON_SQLITE
@pytest.mark.parametrize("page", ["0", "-1", "abc", str(MAX_PAGE + 1), "1e3", "\uff11"])
def test_a_bad_page_number_is_refused_naming_it(app: Portal, page: str) -> None:
    approve_change(app, scaffold(app, "paged"), GRACE)
    response = app.client.get(f"/catalog/component/default/paged/history?page={page}")
    assert response.status_code == 400
    assert "page: expected a number from 1 to" in response.text


@PAGES_ON_SQLITE
def test_only_services_have_a_history(app: Portal) -> None:
    group = app.client.get("/catalog/group/default/platform-team/history")
    assert group.status_code == 404 and "has no History" in group.text
    assert 'id="history"' not in app.client.get("/catalog/group/default/platform-team").text
    missing = app.client.get("/catalog/component/default/nothing-here/history")
    assert missing.status_code == 404


@PAGES_ON_SQLITE
def test_history_of_a_mixed_case_kind_redirects_to_the_canonical_url(app: Portal) -> None:
    approve_change(app, scaffold(app, "canon"), GRACE)
    response = app.client.get(
        "/catalog/Component/default/canon/history?page=1", follow_redirects=False
    )
    assert response.status_code == 301
    assert response.headers["location"] == "/catalog/component/default/canon/history?page=1"


@PAGES_ON_SQLITE
def test_commit_diff_of_a_commit_no_change_made(app: Portal) -> None:
    approve_change(app, scaffold(app, "hand"), GRACE)
    push_by_hand(
        app, [{"services/hand/notes.md": "first line\n", "services/else/x": "not this folder\n"}]
    )
    sha = rows(history(app, "hand"))[0][0]

    page = app.client.get(f"/reviews/services/hand/commits/{sha[:7]}")
    assert page.status_code == 200, page.text
    assert sha in page.text and "By hand 0" in page.text
    assert 'class="diff-table"' in page.text and "services/hand/notes.md" in page.text
    assert "first line" in page.text
    assert "services/else/x" not in page.text  # only the service's folder
    assert "not made through the portal" in page.text


@PAGES_ON_SQLITE
def test_commit_diff_of_a_merge_names_its_change(app: Portal) -> None:
    change = approve_change(app, scaffold(app, "merged"), GRACE)
    page = app.client.get(f"/reviews/services/merged/commits/{change.merge_sha}")
    assert page.status_code == 200
    assert f'href="/reviews/{change.id}"' in page.text and "catalog-info.yaml" in page.text


@pytest.mark.parametrize(
    ("commit", "status", "message"),
    [
        ("xyz1234", 400, "expected 7 to 40 hexadecimal characters"),
        ("abc", 400, "expected 7 to 40 hexadecimal characters"),
        ("--output=owned", 400, "expected 7 to 40 hexadecimal characters"),
        ("a" * 41, 400, "expected 7 to 40 hexadecimal characters"),
        ("0000000", 404, "No commit 0000000 on main changes services/sha-svc/"),
        ("f" * 40, 404, "No commit"),
    ],
)
@PAGES_ON_SQLITE
def test_a_bad_commit_is_refused_never_a_server_error(
    app: Portal, commit: str, status: int, message: str
) -> None:
    approve_change(app, scaffold(app, "sha-svc"), GRACE)
    response = app.client.get(f"/reviews/services/sha-svc/commits/{commit}")
    assert response.status_code == status, response.text
    assert message in response.text


@PAGES_ON_SQLITE
def test_a_commit_of_another_service_is_not_shown_under_this_one(app: Portal) -> None:
    approve_change(app, scaffold(app, "mine"), GRACE)
    theirs = approve_change(app, scaffold(app, "theirs"), GRACE)
    response = app.client.get(f"/reviews/services/mine/commits/{theirs.merge_sha}")
    assert response.status_code == 404
    bad_name = app.client.get(f"/reviews/services/Not_A_Label/commits/{theirs.merge_sha}")
    assert bad_name.status_code == 404 and "DNS-1123" in bad_name.text


@PAGES_ON_SQLITE
def test_history_falls_back_to_the_last_fetch_when_the_remote_is_gone(app: Portal) -> None:
    change = approve_change(app, scaffold(app, "offline"), GRACE)
    moved = app.remote.with_name("moved.git")
    app.remote.rename(moved)
    try:
        html = history(app, "offline")
    finally:
        moved.rename(app.remote)
    assert "main could not be fetched just now" in html
    assert [sha for sha, _ in rows(html)] == [change.merge_sha]


@PAGES_ON_SQLITE
def test_an_unreadable_gitops_repository_is_said_so(
    app: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    change = approve_change(app, scaffold(app, "down"), GRACE)

    def unavailable() -> GitOpsRepo:
        raise GitOpsUnavailableError("the GitOps clone is still being set up; try again")

    monkeypatch.setattr(changes_runtime(app.client), "request_gitops", unavailable)
    url = "/catalog/component/default/down/history"
    full = app.client.get(url)
    assert full.status_code == 503 and "cannot be read just now" in full.text
    # htmx swaps only 2xx answers: the section itself says what failed.
    fragment = app.client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "still being set up" in fragment.text
    commit = app.client.get(f"/reviews/services/down/commits/{change.merge_sha}")
    assert commit.status_code == 503 and "cannot be read just now" in commit.text
