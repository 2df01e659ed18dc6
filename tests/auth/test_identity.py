"""Identity: local sign-in from the catalog, and trusted proxy headers."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.auth.identity import identity_from_headers
from portal.cli import initialise
from portal.config import AuthMode, Settings
from tests.conftest import ALAN, REPO, csrf_token


@pytest.fixture
def local_client(settings: Settings) -> Iterator[TestClient]:
    initialise(settings.model_copy(update={"catalog_paths": [str(REPO / "catalog")]}))
    with TestClient(create_app(settings)) as client:
        yield client


def test_sign_in_as_catalog_user_shows_name_and_groups(local_client: TestClient) -> None:
    page = local_client.get("/auth/sign-in")
    assert 'value="user:default/ada.lovelace"' in page.text
    token = csrf_token(local_client, "/auth/sign-in")
    response = local_client.post(
        "/auth/sign-in",
        data={"user": "user:default/ada.lovelace", "csrf_token": token, "next": "/catalog"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/catalog"
    assert "Ada Lovelace" in local_client.get("/catalog").text


def test_sign_in_refuses_unknown_user_and_open_redirect(local_client: TestClient) -> None:
    token = csrf_token(local_client, "/auth/sign-in")
    unknown = local_client.post("/auth/sign-in", data={"user": "nobody", "csrf_token": token})
    assert unknown.status_code == 400 and "is not a User in the catalog" in unknown.text
    redirect = local_client.post(
        "/auth/sign-in",
        data={"user": "grace.hopper", "csrf_token": token, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert redirect.headers["location"] == "/catalog"


def test_session_cookie_is_signed(local_client: TestClient) -> None:
    token = csrf_token(local_client, "/auth/sign-in")
    local_client.post("/auth/sign-in", data={"user": "grace.hopper", "csrf_token": token})
    cookie = local_client.cookies.get("portal_session")
    assert cookie
    tampered = cookie[:-6] + ("AAAAAA" if not cookie.endswith("AAAAAA") else "BBBBBB")
    local_client.cookies.clear()
    local_client.cookies.set("portal_session", tampered)
    assert "Grace Hopper" not in local_client.get("/catalog").text


def test_trusted_header_mode(tmp_path: Path, settings: Settings) -> None:
    proxied = settings.model_copy(
        update={
            "auth_mode": AuthMode.TRUSTED_HEADER,
            "user_header": "X-Auth-User",
            "groups_header": "X-Auth-Groups",
        }
    )
    with TestClient(create_app(proxied)) as client:
        page = client.get("/catalog", headers={"X-Auth-User": "jane", "X-Auth-Groups": "sre"})
        assert "jane" in page.text
        ignored = client.get("/catalog", headers={"X-Forwarded-User": "mallory"})
        assert "mallory" not in ignored.text
        token = csrf_token(client)
        refused = client.post("/auth/sign-in", data={"user": "x", "csrf_token": token})
        assert refused.status_code == 400 and "trusted-header" in refused.text


def test_identity_from_headers_parses_groups() -> None:
    identity = identity_from_headers("jane", "sre, group:default/platform-admins,,Team-B")
    assert identity is not None
    assert identity.user_ref == "user:default/jane"
    assert identity.groups == {
        "group:default/sre",
        "group:default/platform-admins",
        "group:default/team-b",
    }
    assert identity_from_headers("  ", "sre") is None


def _as_alan_claiming_admin(groups_header: str) -> list[tuple[str, str]]:
    """ALAN's own proxy headers plus a second groups header the client added itself."""
    return [
        ("X-Forwarded-User", "alan.turing"),
        ("X-Forwarded-Groups", "ml-apps"),
        (groups_header, "platform-admins"),
        ("Content-Type", "application/json"),
    ]


@pytest.mark.parametrize(
    "second", ["X-Forwarded-Groups", "x-forwarded-groups", "X-FORWARDED-GROUPS"]
)
def test_a_repeated_groups_header_is_refused(portal: TestClient, second: str) -> None:
    # Before: the last header won, and ALAN acted as a platform admin (404, not 403).
    response = portal.delete("/api/templates/nope", headers=_as_alan_claiming_admin(second))
    assert response.status_code == 400, response.text
    assert "X-Forwarded-Groups" in response.json()["detail"]
    alone = portal.delete(
        "/api/templates/nope", headers={**ALAN, "Content-Type": "application/json"}
    )
    assert alone.status_code == 403


def test_a_repeated_user_header_is_refused_on_every_method(portal: TestClient) -> None:
    twice = [("X-Forwarded-User", "alan.turing"), ("x-forwarded-user", "ada.lovelace")]
    page = portal.get("/catalog", headers=[*twice, ("Accept", "text/html")])
    assert page.status_code == 400 and "X-Forwarded-User" in page.text
    assert page.headers["content-type"].startswith("text/html")
    api = portal.get("/api/templates", headers=twice)
    assert api.status_code == 400 and "more than once" in api.json()["detail"]


def test_local_mode_ignores_repeated_proxy_headers(local_client: TestClient) -> None:
    response = local_client.get(
        "/api/templates", headers=_as_alan_claiming_admin("x-forwarded-groups")
    )
    assert response.status_code == 200
