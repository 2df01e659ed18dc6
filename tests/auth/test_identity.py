"""Identity: local sign-in from the catalog, and trusted proxy headers."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.auth.identity import identity_from_headers
from portal.cli import initialise
from portal.config import AuthMode, Settings
from tests.conftest import REPO, csrf_token


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
