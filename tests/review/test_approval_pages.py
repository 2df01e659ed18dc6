"""The approval gate on the change page and in the JSON API, on a real scaffold.

The portal runs with a cost ceiling of 1 USD a month, so the real cost checks of every
environment fail: a change that honestly cannot be approved without an override.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from portal.app import create_app
from portal.changes.models import CheckRun
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, GRACE, REPO, csrf_token, runtime
from tests.databases import PAGES_ON_SQLITE

pytestmark = PAGES_ON_SQLITE

# Of the owning team, not a platform admin (ADA is both; GRACE requests the changes).
LINUS = {"X-Forwarded-User": "linus", "X-Forwarded-Groups": "platform-team"}
FAILED = ["cost (dev)", "cost (staging)", "cost (prod)"]
REASON = "Cost ceiling is being raised for this team in OPS-7; approved by the budget owner."


@pytest.fixture
def strict(settings: Settings) -> Iterator[TestClient]:
    """The app in trusted-header mode whose cost ceiling every scaffold exceeds."""
    proxied = settings.model_copy(
        update={
            "auth_mode": AuthMode.TRUSTED_HEADER,
            "catalog_paths": [str(REPO / "catalog")],
            "cost_max_monthly_usd": 1.0,
        }
    )
    initialise(proxied, gitops=True)
    with TestClient(create_app(proxied)) as client:
        yield client


def request_change(client: TestClient, name: str) -> str:
    body = {
        "template": "fastapi-service",
        "answers": {"name": name, "owner": "platform-team", "description": "Takes payments"},
    }
    response = client.post("/api/scaffold", json=body, headers=GRACE)
    assert response.status_code == 202, response.text
    assert run_pending(runtime(client).context) == 1
    change_id: str = response.json()["id"]
    return change_id


def set_status(client: TestClient, change_id: str, name: str, status: str) -> None:
    with Session(runtime(client).context.engine) as session:
        check = session.exec(
            select(CheckRun).where(CheckRun.change_id == change_id, col(CheckRun.name) == name)
        ).one()
        check.status = status
        session.add(check)
        session.commit()


def post_form(
    client: TestClient, change_id: str, action: str, who: dict[str, str], data: dict[str, object]
) -> tuple[int, str]:
    token = csrf_token(client, f"/reviews/{change_id}")
    response = client.post(
        f"/reviews/{change_id}/{action}",
        data={"csrf_token": token, **data},
        headers=who,
        follow_redirects=False,
    )
    return response.status_code, response.text


def approve_forms(html: str) -> list[str]:
    return re.findall(r'action="/reviews/[^/]+/(approve[-\w]*)"', html)


def main_log(client: TestClient) -> str:
    remote = runtime(client).context.settings.data_dir / "gitops" / "remote.git"
    return subprocess.run(
        ["git", "--git-dir", str(remote), "log", "-1", "--format=%B", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_a_reviewer_sees_why_approval_is_blocked_and_cannot_approve(strict: TestClient) -> None:
    change_id = request_change(strict, "payments")
    set_status(strict, change_id, "checkov", "warning")
    html = strict.get(f"/reviews/{change_id}", headers=LINUS).text
    blocking = re.search(r'data-gate="blocking">(.*?)</div>', html, re.S)
    assert blocking is not None
    assert "3 checks failed or could not run" in blocking.group(1)
    assert re.findall(r"<li><code>([^<]+)</code></li>", blocking.group(1)) == FAILED
    warnings = re.search(r'data-gate="warnings">(.*?)</div>', html, re.S)
    assert warnings is not None and "<li><code>checkov</code></li>" in warnings.group(1)
    assert "they do not block the approval" in warnings.group(1)
    # The Approve button gives way to an explanation; the other decisions stay.
    assert approve_forms(html) == [] and 'data-approve="blocked"' in html
    assert "ask a member of platform-admins to approve over them with a written reason" in html
    assert f'action="/reviews/{change_id}/request-changes"' in html
    assert f'action="/reviews/{change_id}/reject"' in html

    status, page = post_form(strict, change_id, "approve", LINUS, {})
    assert status == 409 and "<strong>Not done:</strong> not approved: 3 checks failed" in page
    api = strict.post(f"/api/changes/{change_id}/approve", json={}, headers=LINUS)
    assert api.status_code == 409
    assert api.json()["blocking_checks"] == FAILED and api.json()["unfinished_checks"] == []
    assert "cost (dev), cost (staging), cost (prod)" in api.json()["detail"]
    over = {"override_reason": REASON, "override_checks": FAILED}
    not_admin = strict.post(f"/api/changes/{change_id}/approve", json=over, headers=LINUS)
    assert not_admin.status_code == 403
    assert "only members of platform-admins" in not_admin.json()["detail"]
    status, page = post_form(
        strict, change_id, "approve-override", LINUS, {"reason": REASON, "override_checks": FAILED}
    )
    assert status == 403 and "only members of platform-admins may approve over" in page
    assert strict.get(f"/api/changes/{change_id}").json()["status"] == "ready"


def test_unfinished_checks_leave_nothing_to_approve_or_override(strict: TestClient) -> None:
    change_id = request_change(strict, "payments")
    set_status(strict, change_id, "checkov", "running")
    html = strict.get(f"/reviews/{change_id}", headers=ADA).text
    assert approve_forms(html) == [] and 'data-approve="waiting"' in html
    assert "Approval waits for the checks:" in html and "not finished (checkov)" in html
    api = strict.post(f"/api/changes/{change_id}/approve", json={}, headers=ADA)
    assert api.status_code == 409 and api.json()["unfinished_checks"] == ["checkov"]


def test_an_admin_approves_over_failing_checks_with_a_reason(strict: TestClient) -> None:
    change_id = request_change(strict, "payments")
    html = strict.get(f"/reviews/{change_id}", headers=ADA).text
    assert approve_forms(html) == ["approve-override"]
    hidden = re.findall(r'<input type="hidden" name="override_checks" value="([^"]+)">', html)
    assert hidden == FAILED
    assert re.search(r'<textarea id="override-reason" name="reason"[^>]* required', html)
    assert 'minlength="10" maxlength="2000"' in html

    # Without a reason: refused, the field named, nothing merged (form and API).
    status, page = post_form(
        strict, change_id, "approve-override", ADA, {"reason": "  ", "override_checks": FAILED}
    )
    assert status == 400 and "the reason is required: say why" in page
    assert re.search(r'<textarea id="override-reason"[^>]*aria-invalid="true"', page)
    api = strict.post(
        f"/api/changes/{change_id}/approve",
        json={"override_reason": "", "override_checks": FAILED},
        headers=ADA,
    )
    assert api.status_code == 422 and set(api.json()["errors"]) == {"override_reason"}
    unnamed = strict.post(
        f"/api/changes/{change_id}/approve", json={"override_reason": REASON}, headers=ADA
    )
    assert unnamed.status_code == 422 and set(unnamed.json()["errors"]) == {"override_checks"}
    assert strict.get(f"/api/changes/{change_id}").json()["status"] == "ready"

    status, _ = post_form(
        strict, change_id, "approve-override", ADA, {"reason": REASON, "override_checks": FAILED}
    )
    assert status == 303
    merged = strict.get(f"/api/changes/{change_id}").json()
    assert merged["status"] == "merged" and merged["approved_by"] == "user:default/ada.lovelace"
    assert merged["override_reason"] == REASON and merged["override_checks"] == FAILED
    page = strict.get(f"/reviews/{change_id}", headers=GRACE).text
    banner = re.search(r'<div class="notice-bad override-banner"[^>]*>(.*?)</div>', page, re.S)
    assert banner is not None
    text = re.sub(r"<[^>]+>", "", banner.group(1))
    assert f"Approved over failing checks by ada.lovelace: {REASON}" in text
    assert "cost (dev), cost (staging), cost (prod)" in text
    audit = re.search(r"<td>approve-override</td><td>([^<]+)</td>", page)
    assert audit is not None
    assert audit.group(1) == f"approved over failing checks {', '.join(FAILED)}: {REASON}"
    log = main_log(strict)
    assert f"Approved over failing checks: {', '.join(FAILED)}\n" in log
    assert f"Reason given by user:default/ada.lovelace:\n    {REASON}\n" in log


def test_the_api_approves_over_failing_checks_and_reports_it(strict: TestClient) -> None:
    change_id = request_change(strict, "payments")
    refused = strict.post(f"/api/changes/{change_id}/approve", json={}, headers=ADA)
    assert refused.status_code == 409
    over = {"override_reason": REASON, "override_checks": refused.json()["blocking_checks"]}
    approved = strict.post(f"/api/changes/{change_id}/approve", json=over, headers=ADA)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "merged"
    assert approved.json()["override_checks"] == FAILED
    assert REASON in main_log(strict)


def test_a_clean_change_shows_the_ordinary_approve_button(strict: TestClient) -> None:
    change_id = request_change(strict, "payments")
    for name in FAILED:
        set_status(strict, change_id, name, "passed")
    html = strict.get(f"/reviews/{change_id}", headers=ADA).text
    assert approve_forms(html) == ["approve"] and 'data-gate="blocking"' not in html
    assert 'data-approve="open"' in html and ">Approve and merge</button>" in html
    status, _ = post_form(strict, change_id, "approve", LINUS, {})
    assert status == 303
    merged = strict.get(f"/api/changes/{change_id}").json()
    assert merged["status"] == "merged" and merged["override_reason"] is None
    assert "override-banner" not in strict.get(f"/reviews/{change_id}").text
