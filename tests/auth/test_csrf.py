"""CSRF: every unsafe form or htmx request needs the session's token; JSON is exempt."""

import pytest
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse

from portal.auth.csrf import CSRFMiddleware
from tests.conftest import csrf_token
from tests.databases import SQLITE_ONLY

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY


def test_post_without_token_is_refused_with_a_clear_page(client: TestClient) -> None:
    client.get("/catalog")
    response = client.post("/auth/sign-out", headers={"accept": "text/html"})
    assert response.status_code == 403
    assert "CSRF token" in response.text


def test_form_field_token_is_accepted(client: TestClient) -> None:
    token = csrf_token(client)
    response = client.post("/auth/sign-out", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303


def test_htmx_header_token_is_accepted_and_wrong_token_refused(client: TestClient) -> None:
    token = csrf_token(client)
    ok = client.post("/auth/sign-out", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert ok.status_code == 303
    bad = client.post("/auth/sign-out", headers={"X-CSRF-Token": token + "x"})
    assert bad.status_code == 403


def test_token_from_another_session_is_refused(client: TestClient) -> None:
    token = csrf_token(client)
    client.cookies.clear()
    response = client.post("/auth/sign-out", data={"csrf_token": token})
    assert response.status_code == 403


def test_multipart_form_token_is_accepted(client: TestClient) -> None:
    token = csrf_token(client)
    response = client.post(
        "/auth/sign-out", files={"csrf_token": (None, token)}, follow_redirects=False
    )
    assert response.status_code == 303


def test_put_patch_delete_are_checked_too(client: TestClient) -> None:
    client.get("/catalog")
    for method in ("PUT", "PATCH", "DELETE"):
        response = client.request(
            method,
            "/auth/sign-out",
            content=b"x=1",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 403, method


def test_json_requests_are_exempt_but_text_plain_is_not(client: TestClient) -> None:
    as_json = client.post("/auth/sign-out", json={}, follow_redirects=False)
    assert as_json.status_code == 303
    sneaky = client.post("/auth/sign-out", content=b"{}", headers={"content-type": "text/plain"})
    assert sneaky.status_code == 403


def test_cors_preflight_is_refused(client: TestClient) -> None:
    response = client.options(
        "/api/catalog/entities",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_api_refusals_are_json(client: TestClient) -> None:
    response = client.post("/api/changes/x/approve", content=b"", headers={"accept": "*/*"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


# Malformed multipart bodies: each used to be a 500 before any auth check.
MALFORMED_MULTIPART = {
    "missing boundary": ("multipart/form-data", b"--zz\r\n\r\n1\r\n--zz--\r\n"),
    "wrong boundary": (
        "multipart/form-data; boundary=aa",
        b'--zz\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--zz--\r\n',
    ),
    "truncated": (
        "multipart/form-data; boundary=zz",
        b'--zz\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\nabc',
    ),
    "part without a name": (
        "multipart/form-data; boundary=zz",
        b"--zz\r\nContent-Disposition: form-data\r\n\r\n1\r\n--zz--\r\n",
    ),
    "binary part header": (
        "multipart/form-data; boundary=zz",
        b"--zz\r\n\x00\x01 no colon\r\n\r\n1\r\n--zz--\r\n",
    ),
    "huge part header": (
        "multipart/form-data; boundary=zz",
        b"--zz\r\nX-Padding: " + b"a" * 200_000 + b"\r\n\r\n1\r\n--zz--\r\n",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_MULTIPART))
@pytest.mark.parametrize(
    "route", ["/auth/sign-out", "/catalog/import", "/api/scaffold", "/api/changes/x/approve"]
)
def test_malformed_multipart_is_a_clear_400(client: TestClient, case: str, route: str) -> None:
    content_type, body = MALFORMED_MULTIPART[case]
    response = client.post(route, content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("The form could not be read: ")


def test_malformed_multipart_gets_a_page_in_a_browser(client: TestClient) -> None:
    content_type, body = MALFORMED_MULTIPART["missing boundary"]
    response = client.post(
        "/catalog/import",
        content=body,
        headers={"content-type": content_type, "accept": "text/html"},
    )
    assert response.status_code == 400 and "Missing boundary" in response.text


def test_a_non_ascii_token_is_refused_not_a_crash(client: TestClient) -> None:
    client.get("/catalog")
    response = client.post("/auth/sign-out", headers={b"X-CSRF-Token": "jé".encode("latin-1")})
    assert response.status_code == 403


def test_the_middleware_bounds_the_body_it_buffers_by_itself() -> None:
    # In the app the body limit runs first; the CSRF check must not rely on that order.
    guarded = CSRFMiddleware(PlainTextResponse("reached"), max_body_bytes=10)
    bare = TestClient(guarded)  # no lifespan: the response is the whole app
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = bare.post("/", content=b"csrf_token=" + b"x" * 10, headers=form)
    assert response.status_code == 413 and "10 bytes" in response.json()["detail"]
    small = bare.post("/", content=b"a=1", headers=form)
    assert small.status_code == 403
