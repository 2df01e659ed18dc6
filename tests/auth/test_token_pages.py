"""The API token page: list, create (secret shown once), revoke; edits in the review list."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.auth.tokens import token_services
from portal.changes.models import EDIT_KIND, Change, ChangeStatus
from tests.conftest import ADA, ALAN, GRACE, csrf_token, runtime
from tests.databases import SQLITE_ONLY

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

# Catalog Components of the repository's own catalog: flux (platform-team), grafana (sre).
OURS, THEIRS = "flux", "grafana"
PAGE = "/settings/tokens"


def submit(
    portal: TestClient, who: dict[str, str], *, csrf: bool = True, **fields: object
) -> Response:
    data: dict[str, object] = {"name": "promoter", "services": [OURS], "expires_days": "30"}
    data |= fields
    if csrf:
        data["csrf_token"] = csrf_token(portal, PAGE)
    return portal.post(PAGE, data=data, headers=who, follow_redirects=False)


def secret_of(html: str) -> str:
    match = re.search(r'id="token-secret" value="(pst_[^"]+)"', html)
    assert match, "the result page shows no token"
    return match.group(1)


def proposal(service: str) -> dict[str, object]:
    edit = {"path": f"services/{service}/x.yaml", "content": "a: 1\n"}
    return {"service": service, "title": "t", "reason": "r", "edits": [edit]}


def test_an_anonymous_visitor_is_asked_to_sign_in(portal: TestClient) -> None:
    response = portal.get(PAGE)
    assert response.status_code == 401
    assert 'id="tokens-sign-in"' in response.text and "Create token" not in response.text
    refused = portal.post(
        PAGE, data={"csrf_token": csrf_token(portal, PAGE), "name": "n", "services": [OURS]}
    )
    assert refused.status_code == 401 and 'id="tokens-sign-in"' in refused.text


def test_the_header_links_to_the_page_for_signed_in_people(portal: TestClient) -> None:
    assert 'href="/settings/tokens"' in portal.get("/catalog", headers=GRACE).text
    assert 'href="/settings/tokens"' not in portal.get("/catalog").text


def test_the_form_offers_the_services_of_the_persons_teams(portal: TestClient) -> None:
    grace = portal.get(PAGE, headers=GRACE).text
    assert f'name="services" value="{OURS}"' in grace
    assert f'name="services" value="{THEIRS}"' not in grace
    admin = portal.get(PAGE, headers=ADA).text
    assert f'name="services" value="{THEIRS}"' in admin
    with Session(runtime(portal).context.engine) as session:
        alan = Identity("user:default/alan.turing", "Alan", frozenset({"group:default/sre"}))
        offered = token_services(session, alan, "platform-admins")
        assert THEIRS in offered and OURS not in offered


def test_creating_shows_the_secret_once_and_the_list_never(portal: TestClient) -> None:
    created = submit(portal, GRACE)
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    assert "will not be shown again" in created.text
    secret = secret_of(created.text)
    token_id = secret.split("_")[1]

    listed = portal.get(PAGE, headers=GRACE)
    assert listed.status_code == 200
    row = re.search(rf'<tr data-token="{token_id}">(.*?)</tr>', listed.text, re.S)
    assert row, "the new token is not listed"
    assert "promoter" in row.group(1) and f"<code>{OURS}</code>" in row.group(1)
    assert "user:default/grace.hopper" in row.group(1)
    # pst_<id>_<random>: the random part may itself hold "_" (URL-safe base64).
    assert secret not in listed.text and secret.split("_", 2)[2] not in listed.text
    # A crafted link cannot claim the token is revoked.
    spoofed = portal.get(f"{PAGE}?revoked={token_id}", headers=GRACE).text
    assert 'id="revoked-notice"' not in spoofed
    # Someone of another team does not see it.
    assert token_id not in portal.get(PAGE, headers=ALAN).text
    # The token works until it is revoked.
    used = portal.get("/api/changes/none", headers={"Authorization": f"Bearer {secret}"})
    assert used.status_code == 404


def test_a_non_owner_cannot_create_a_token_for_another_teams_service(
    portal: TestClient,
) -> None:
    refused = submit(portal, GRACE, services=[OURS, THEIRS])
    assert refused.status_code == 403
    assert 'id="services-error"' in refused.text and "services:" in refused.text
    assert 'id="token-secret"' not in refused.text
    assert "pst_" not in portal.get(PAGE, headers=GRACE).text
    # The form keeps what was entered.
    assert 'value="promoter"' in refused.text
    # An admin may.
    assert submit(portal, ADA, services=[OURS, THEIRS]).status_code == 201


def test_bad_input_shows_the_form_again_naming_the_field(portal: TestClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"services": []}, "services"),
        ({"services": ["Not A Name"]}, "services"),
        ({"services": ["no-such-service"]}, "services"),
        ({"expires_days": "soon"}, "expires_days"),
        ({"expires_days": "0"}, "expires_days"),
        ({"expires_days": "99999"}, "expires_days"),
    ]
    for fields, field in cases:
        response = submit(portal, GRACE, **fields)
        assert response.status_code == 422, (fields, response.text[:300])
        assert f"{field}:" in response.text and 'class="field-error"' in response.text, fields
        assert 'id="token-secret"' not in response.text
    never = submit(portal, GRACE, expires_days="")
    assert never.status_code == 201 and "<dd>never</dd>" in never.text


def test_a_form_without_the_csrf_token_is_refused(portal: TestClient) -> None:
    portal.get(PAGE, headers=GRACE)  # a session with a CSRF token exists
    assert submit(portal, GRACE, csrf=False).status_code == 403
    secret = secret_of(submit(portal, GRACE).text)
    token_id = secret.split("_")[1]
    revoke = portal.post(f"{PAGE}/{token_id}/revoke", headers=GRACE, follow_redirects=False)
    assert revoke.status_code == 403
    assert (
        portal.get("/api/changes/none", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 404
    )


def test_revoking_asks_first_then_the_token_gets_401(portal: TestClient) -> None:
    secret = secret_of(submit(portal, GRACE).text)
    token_id = secret.split("_")[1]
    confirm = portal.get(f"{PAGE}/{token_id}/revoke", headers=GRACE)
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    assert portal.get(f"{PAGE}/{token_id}/revoke", headers=ALAN).status_code == 404
    outsider = portal.post(
        f"{PAGE}/{token_id}/revoke",
        data={"csrf_token": csrf_token(portal, PAGE)},
        headers=ALAN,
        follow_redirects=False,
    )
    assert outsider.status_code == 403

    revoked = portal.post(
        f"{PAGE}/{token_id}/revoke",
        data={"csrf_token": csrf_token(portal, PAGE)},
        headers=GRACE,
        follow_redirects=False,
    )
    assert (
        revoked.status_code == 303 and revoked.headers["location"] == f"{PAGE}?revoked={token_id}"
    )
    listed = portal.get(revoked.headers["location"], headers=GRACE).text
    assert 'id="revoked-notice"' in listed
    row = re.search(rf'<tr data-token="{token_id}">(.*?)</tr>', listed, re.S)
    assert row and "revoked" in row.group(1) and "Revoke…" not in row.group(1)
    proposed = portal.post(
        "/api/changes", json=proposal(OURS), headers={"Authorization": f"Bearer {secret}"}
    )
    assert proposed.status_code == 401 and "revoked" in proposed.json()["detail"]
    assert (
        portal.post(
            f"{PAGE}/nosuchtoken/revoke",
            data={"csrf_token": csrf_token(portal, PAGE)},
            headers=GRACE,
        ).status_code
        == 404
    )


def test_the_review_list_shows_the_kind_and_proposer_of_an_edit(portal: TestClient) -> None:
    with Session(runtime(portal).context.engine) as session:
        for by in ("token:abc123 (model-promoter)", "user:default/grace.hopper"):
            session.add(
                Change(
                    kind=EDIT_KIND,
                    title=f"Edit by {by}",
                    template="",
                    service=OURS,
                    owner_ref="group:default/platform-team",
                    requester_ref="user:default/grace.hopper",
                    answers={},
                    branch=f"change/{OURS}/{len(by)}",
                    status=ChangeStatus.READY,
                    proposed_by=by,
                )
            )
        session.commit()
    html = portal.get("/reviews").text
    cells = re.findall(r'<td data-label="Template" data-kind="edit">(.*?)</td>', html, re.S)
    assert len(cells) == 2
    joined = " | ".join(cells)
    assert "edit · proposed by token <strong>model-promoter</strong>" in joined
    assert 'edit · proposed by <a href="/catalog/user/default/grace.hopper"' in joined
