"""Service-account API tokens: who creates them, shown once, stored hashed, refused when bad."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from portal.auth.identity import Identity, token_identity
from portal.auth.models import PROPOSE_SCOPE, ServiceToken, TokenGrant
from portal.auth.tokens import may_manage
from portal.changes.models import Change
from portal.clock import utcnow
from portal.review.decide import may_review
from tests.conftest import ADA, ALAN, GRACE, runtime

# Catalog Components of the repository's own catalog: flux (platform-team), grafana (sre).
OURS, THEIRS = "flux", "grafana"


def create(portal: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return portal.post(
        "/api/tokens", json={"name": "bot", "services": [OURS], **body}, headers=headers
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored(portal: TestClient, token_id: str) -> ServiceToken:
    with Session(runtime(portal).context.engine) as session:
        token = session.get(ServiceToken, token_id)
        assert token is not None
        return token


def proposal(service: str) -> dict[str, Any]:
    edit = {"path": f"services/{service}/x.yaml", "content": "a: 1\n"}
    return {"service": service, "title": "t", "reason": "r", "edits": [edit]}


def test_a_member_of_the_owning_team_creates_a_token_shown_once_and_stored_hashed(
    portal: TestClient,
) -> None:
    response = create(portal, GRACE)
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["token"]
    assert secret.startswith(f"pst_{created['id']}_")
    assert created["scopes"] == [PROPOSE_SCOPE] and created["services"] == [OURS]
    assert created["created_by"] == "user:default/grace.hopper"

    listed = portal.get("/api/tokens", headers=GRACE).json()["items"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert "token" not in listed[0] and secret not in str(listed)
    row = stored(portal, created["id"])
    raw = secret.removeprefix(f"pst_{created['id']}_")
    assert row.secret_sha256 == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(row.model_dump())
    assert row.last_used_at is None

    assert portal.get("/api/changes/none", headers=bearer(secret)).status_code == 404
    assert stored(portal, created["id"]).last_used_at is not None  # last use recorded


def test_who_may_create_a_token(portal: TestClient) -> None:
    outsider = create(portal, ALAN)
    assert outsider.status_code == 403 and "platform-team" in outsider.json()["detail"]
    assert create(portal, ADA, services=[OURS, THEIRS]).status_code == 201  # an admin
    assert create(portal, GRACE, services=[OURS, THEIRS]).status_code == 403
    anonymous = create(portal, {})
    assert anonymous.status_code == 401
    token = create(portal, GRACE).json()["token"]
    by_token = create(portal, bearer(token))
    assert by_token.status_code == 403 and "may only propose" in by_token.json()["detail"]


def test_bad_token_requests_name_the_field(portal: TestClient) -> None:
    past = (utcnow() - timedelta(days=1)).isoformat()
    response = create(
        portal, ADA, name="", services=["nope", "Bad Name"], scopes=["admin"], expires_at=past
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"name", "services[0]", "services[1]", "scopes", "expires_at"}
    assert "no catalog Component" in errors["services[0]"]


def test_a_token_name_is_one_line_of_text(portal: TestClient) -> None:
    for name in ("two\nlines", "tab\there", "bell\x07", "next\x85line", "\u202ebot"):
        response = create(portal, ADA, name=name)
        assert response.status_code == 422, name
        assert set(response.json()["errors"]) == {"name"}, name
    assert create(portal, ADA, name="  deploy bot \u00e9  ").status_code == 201


def test_bad_expired_and_revoked_tokens_are_refused_with_401(portal: TestClient) -> None:
    created = create(portal, GRACE, expires_at=(utcnow() + timedelta(days=1)).isoformat()).json()
    token = created["token"]
    assert portal.get("/api/changes/none", headers=bearer(token)).status_code == 404

    wrong_secret = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    for bad, says in [
        ("pst_nonsense", "not a portal API token"),
        ("pst_000000000000_" + "a" * 43, "unknown or its secret is wrong"),
        (wrong_secret, "unknown or its secret is wrong"),
    ]:
        refused = portal.post("/api/changes", json=proposal(OURS), headers=bearer(bad))
        assert refused.status_code == 401, bad
        assert says in refused.json()["detail"]
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # Another Authorization header (a proxy's OIDC token) is not the portal's: the proxy's
    # identity headers still count.
    for header in ("Basic eDp5", "Bearer eyJhbGciOi.x.y"):
        passed_on = portal.post(
            "/api/tokens",
            json={"name": "n", "services": [OURS]},
            headers={**GRACE, "Authorization": header},
        )
        assert passed_on.status_code == 201, passed_on.text

    with Session(runtime(portal).context.engine) as session:
        row = session.get(ServiceToken, created["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.add(row)
        session.commit()
    expired = portal.post("/api/changes", json=proposal(OURS), headers=bearer(token))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]

    other = create(portal, GRACE).json()
    assert (
        portal.post(f"/api/tokens/{other['id']}/revoke", json={}, headers=ALAN).status_code == 403
    )
    revoked = portal.post(f"/api/tokens/{other['id']}/revoke", json={}, headers=GRACE)
    assert (
        revoked.status_code == 200 and revoked.json()["revoked_by"] == "user:default/grace.hopper"
    )
    again = portal.post(f"/api/tokens/{other['id']}/revoke", json={}, headers=ADA).json()
    assert again["revoked_by"] == "user:default/grace.hopper"  # the first revocation stays
    refused = portal.post("/api/changes", json=proposal(OURS), headers=bearer(other["token"]))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert portal.post("/api/tokens/none/revoke", json={}, headers=ADA).status_code == 404


def test_a_token_proposes_only_for_its_services_and_makes_no_other_write(
    portal: TestClient,
) -> None:
    token = create(portal, GRACE).json()["token"]
    response = portal.post("/api/changes", json=proposal(THEIRS), headers=bearer(token))
    assert response.status_code == 403
    assert f"may not propose changes to {THEIRS}" in response.json()["detail"]
    scaffold = {"template": "fastapi-service", "answers": {"name": "x", "owner": "sre"}}
    other_write = portal.post("/api/scaffold", json=scaffold, headers=bearer(token))
    assert other_write.status_code == 403 and "needs a person" in other_write.json()["detail"]
    with Session(runtime(portal).context.engine) as session:
        assert session.exec(select(Change)).first() is None


def test_a_token_identity_may_not_review_even_with_a_team_in_it() -> None:
    change = Change(
        title="t",
        template="",
        service=OURS,
        owner_ref="group:default/platform-team",
        requester_ref="user:default/grace.hopper",
        answers={},
        branch="change/flux/1",
    )
    grant = TokenGrant("abc", "bot", frozenset({PROPOSE_SCOPE}), frozenset({OURS}), "u")
    identity = token_identity(grant)
    assert identity.groups == frozenset() and identity.user_ref == "token:abc"
    # Even an identity that (wrongly) carried the owning team and admin group is refused.
    teamed = Identity(
        identity.user_ref,
        identity.display_name,
        frozenset({"group:default/platform-team", "group:default/platform-admins"}),
        grant,
    )
    reason = may_review(change, teamed, "platform-admins")
    assert reason is not None and "never approve" in reason
    person = Identity("user:default/ada.lovelace", "Ada", teamed.groups)
    assert may_review(change, person, "platform-admins") is None


def test_a_token_identity_manages_no_token_even_with_an_admin_group(portal: TestClient) -> None:
    created = create(portal, GRACE).json()
    grant = TokenGrant(created["id"], "bot", frozenset({PROPOSE_SCOPE}), frozenset({OURS}), "u")
    admins = frozenset({"group:default/platform-admins"})
    teamed = Identity(f"token:{created['id']}", "bot", admins, grant)
    with Session(runtime(portal).context.engine) as session:
        token = session.get(ServiceToken, created["id"])
        assert token is not None
        assert not may_manage(session, token, teamed, "platform-admins")
        assert may_manage(
            session, token, Identity("user:default/x", "X", admins), "platform-admins"
        )
