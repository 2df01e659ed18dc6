"""The Reviews pages: list, change page (progress, checks, diff, audit) and decision forms."""

from __future__ import annotations

import re
import subprocess

from fastapi.testclient import TestClient
from sqlmodel import Session

from portal.changes.models import Change, ChangeStatus
from portal.changes.store import get_change
from portal.config import Settings
from portal.integrations.copier import FakeRenderer
from portal.review.diff_view import clear_caches
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, ALAN, GRACE, csrf_token, runtime
from tests.databases import PAGES_ON_SQLITE

pytestmark = PAGES_ON_SQLITE

POLL = {"HX-Request": "true", "HX-Target": "progress"}


def request_change(client: TestClient, name: str, *, process: bool = True) -> str:
    body = {
        "template": "fastapi-service",
        "answers": {"name": name, "owner": "platform-team", "description": "Takes payments"},
    }
    response = client.post("/api/scaffold", json=body, headers=ADA)
    assert response.status_code == 202, response.text
    if process:
        assert run_pending(runtime(client).context) == 1
    change_id: str = response.json()["id"]
    return change_id


def stored(client: TestClient, change_id: str) -> Change:
    with Session(runtime(client).context.engine) as session:
        change = get_change(session, change_id)
        assert change is not None
        return change


def decide(
    client: TestClient, change_id: str, action: str, who: dict[str, str], comment: str = ""
) -> tuple[int, str, str]:
    token = csrf_token(client, f"/reviews/{change_id}")
    response = client.post(
        f"/reviews/{change_id}/{action}",
        data={"csrf_token": token, "comment": comment},
        headers=who,
        follow_redirects=False,
    )
    return response.status_code, response.headers.get("location", ""), response.text


def branch_exists(settings: Settings, branch: str) -> bool:
    remote = settings.data_dir / "gitops" / "remote.git"
    listing = subprocess.run(
        ["git", "--git-dir", str(remote), "branch", "--list", branch],
        capture_output=True,
        text=True,
        check=True,
    )
    return bool(listing.stdout.strip())


def test_the_list_shows_open_changes_and_all_on_request(portal: TestClient) -> None:
    change_id = request_change(portal, "payments")
    html = portal.get("/reviews").text
    assert f'<a href="/reviews/{change_id}">Create payments from FastAPI service</a>' in html
    assert 'data-status="ready">ready for review</span>' in html
    assert "<code>payments</code>" in html and "fastapi-service" in html
    assert '<a href="/catalog/user/default/ada.lovelace"' in html and "just now" in html
    approved = portal.post(f"/api/changes/{change_id}/approve", json={}, headers=GRACE)
    assert approved.status_code == 200
    assert change_id not in portal.get("/reviews").text
    everything = portal.get("/reviews?all=1").text
    assert change_id in everything and 'data-status="merged"' in everything


def test_the_change_page_shows_checks_diff_and_audit(portal: TestClient) -> None:
    change_id = request_change(portal, "payments")
    change = stored(portal, change_id)
    html = portal.get(f"/reviews/{change_id}", headers=GRACE).text
    assert "<h1>Create payments from FastAPI service</h1>" in html
    assert "<code>scaffold/payments</code>" in html and change.commit_sha
    assert change.commit_sha[:12] in html
    # Progress is complete: every step done, nothing polls.
    assert html.count('data-state="done"') == 5 and 'hx-trigger="every 1s"' not in html
    # Checks, grouped by environment, with the cost estimate per environment.
    for heading in ("Service files", "Environment dev", "Environment staging", "Environment prod"):
        assert f'<span class="check-group-label">{heading}</span>' in html
    assert 'data-check="schema (prod)"' in html and 'data-check-status="passed"' in html
    assert re.search(r'<th scope="row">prod</th><td>estimated [0-9.]+ USD/month', html)
    # The diff: a tree of the changed files and one collapsible, highlighted section each.
    gitops = runtime(portal).context.gitops()
    changed = gitops.changed_files(change.commit_sha, base=gitops.parent_of(change.commit_sha))
    assert len(changed) > 10
    shown = html.count('<details class="diff-file"')
    collapsed = html.count('class="diff-file collapsed"')
    assert shown > 5 and shown + collapsed == len(changed)
    for index, path in enumerate(changed, start=1):
        assert f'<a href="#file-{index}">{path.rsplit("/", 1)[-1]}</a>' in html
        assert f'id="file-{index}"' in html and f'<span class="diff-path">{path}</span>' in html
    assert '<nav class="file-tree" aria-label="Changed files">' in html
    assert '<span class="nt">kind</span>' in html  # YAML keys are highlighted tokens
    assert '<link rel="stylesheet" href="/reviews/diff.css">' in html
    css = portal.get("/reviews/diff.css")
    assert css.headers["content-type"].startswith("text/css") and ".highlight .nt" in css.text
    # The audit log and, for a teammate of the owner, the three decision forms.
    assert re.search(r"ada\.lovelace</a></td><td>requested</td><td>template fastapi-service", html)
    for action in ("approve", "request-changes", "reject"):
        assert f'action="/reviews/{change_id}/{action}"' in html


def test_progress_polls_while_working_then_the_whole_change_is_swapped_in(
    portal: TestClient,
) -> None:
    change_id = request_change(portal, "orders", process=False)
    full = portal.get(f"/reviews/{change_id}").text
    assert 'hx-trigger="every 1s"' in full and 'data-status="rendering"' in full
    assert "the checks and the diff appear when it is done" in full
    assert 'id="diff"' not in full and 'id="checks"' not in full
    poll = portal.get(f"/reviews/{change_id}", headers=POLL)
    assert poll.status_code == 200 and "HX-Retarget" not in poll.headers
    fragment = poll.text.lstrip()
    assert fragment.startswith('<section id="progress"') and "<html" not in fragment
    assert fragment.count("<section") == 1 and 'hx-trigger="every 1s"' in fragment
    assert '<li class="step" data-step="validate" data-state="done">' in fragment
    assert '<li class="step" data-step="render" data-state="waiting">' in fragment

    run_pending(runtime(portal).context)
    done = portal.get(f"/reviews/{change_id}", headers=POLL)
    assert done.headers["HX-Retarget"] == "#change" and done.headers["HX-Reswap"] == "outerHTML"
    swapped = done.text.lstrip()
    assert swapped.startswith('<div id="change"') and "<html" not in swapped
    assert 'hx-trigger="every 1s"' not in swapped
    assert 'hx-swap-oob="innerHTML:#progress-status">Finished: the change is ready.' in swapped
    assert 'class="diff-file' in swapped and 'id="checks-title"' in swapped


def test_only_reviewers_get_the_forms_and_others_are_told_why(portal: TestClient) -> None:
    change_id = request_change(portal, "payments")
    path = f"/reviews/{change_id}"
    author = portal.get(path, headers=ADA).text
    assert "approve" not in re.findall(r'action="/reviews/[^/]+/(\w+)"', author)
    assert "You requested this change, and the author of a change cannot approve" in author
    outsider = portal.get(path, headers=ALAN).text
    assert "/approve" not in outsider
    assert "You cannot decide on this change: only members of group:default/platform-team" in (
        outsider
    )
    anonymous = portal.get(path).text
    assert "/approve" not in anonymous and "Sign in to review this change." in anonymous


def test_decisions_through_the_forms(portal: TestClient, settings: Settings) -> None:
    change_id = request_change(portal, "payments")
    status, _, html = decide(portal, change_id, "approve", ADA)
    assert status == 403 and "the author of a change cannot approve or reject it" in html
    assert 'role="alert"><strong>Not done:</strong>' in html
    status, _, html = decide(portal, change_id, "approve", ALAN)
    assert status == 403 and "only members of group:default/platform-team" in html
    no_token = portal.post(f"/reviews/{change_id}/approve", headers=GRACE)
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    status, _, html = decide(portal, change_id, "approve", {})
    assert status == 401 and "Sign in" in html
    assert stored(portal, change_id).status is ChangeStatus.READY

    status, _, html = decide(portal, change_id, "request-changes", GRACE, "  ")
    assert status == 400 and "say what should change" in html
    assert re.search(r'<textarea id="request-comment"[^>]*aria-invalid="true"', html)
    status, location, _ = decide(portal, change_id, "request-changes", GRACE, "Add an alert")
    assert status == 303 and location == f"/reviews/{change_id}#decision"
    assert stored(portal, change_id).status is ChangeStatus.CHANGES_REQUESTED
    page = portal.get(f"/reviews/{change_id}").text
    assert "changes requested</td><td>Add an alert</td>" in page

    status, location, _ = decide(portal, change_id, "approve", GRACE)
    assert status == 303 and location == f"/reviews/{change_id}#decision"
    merged = stored(portal, change_id)
    clear_caches()  # read the diff from git again, now that main has moved on
    assert merged.status is ChangeStatus.MERGED
    assert merged.approved_by == "user:default/grace.hopper"
    page = portal.get(f"/reviews/{change_id}").text
    assert 'data-status="merged"' in page and "Merged into <code>main</code>" in page
    assert '<a href="/catalog/component/default/payments">payments</a>' in page
    assert page.count('class="diff-file') > 10  # still the reviewed diff after merge
    assert "approved</td><td>merged as" in page
    assert not re.search(r'action="/reviews/[^"]+/(approve|reject)"', page)
    entity = portal.get("/catalog/component/default/payments", headers={"Accept": "text/html"})
    assert entity.status_code == 200

    status, _, html = decide(portal, change_id, "reject", GRACE, "too late")
    assert status == 409 and "a change that is merged cannot be rejected" in html
    assert branch_exists(settings, "scaffold/payments")


def test_rejecting_through_the_form_deletes_the_branch(
    portal: TestClient, settings: Settings
) -> None:
    change_id = request_change(portal, "orders")
    assert branch_exists(settings, "scaffold/orders")
    status, location, _ = decide(portal, change_id, "reject", GRACE, "We have one already")
    assert status == 303 and location.startswith(f"/reviews/{change_id}")
    assert stored(portal, change_id).status is ChangeStatus.REJECTED
    assert not branch_exists(settings, "scaffold/orders")
    page = portal.get(f"/reviews/{change_id}").text
    assert 'data-status="rejected"' in page and "rejected</td><td>We have one already" in page


def test_a_failed_change_says_why_and_can_be_rejected(portal: TestClient) -> None:
    runtime(portal).context.renderer = FakeRenderer(error="template exploded")
    change_id = request_change(portal, "broken")
    page = portal.get(f"/reviews/{change_id}", headers=GRACE).text
    assert 'data-status="failed"' in page and "template exploded" in page
    assert '<li class="step" data-step="render" data-state="failed">' in page
    assert "Nothing was committed for this change." in page
    assert f'action="/reviews/{change_id}/reject"' in page
    assert f'action="/reviews/{change_id}/approve"' not in page


def test_an_unknown_change_is_not_found(portal: TestClient) -> None:
    response = portal.get("/reviews/0000000000000000", headers={"Accept": "text/html"})
    assert response.status_code == 404 and "There is no change 0000000000000000." in response.text
