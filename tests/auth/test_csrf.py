"""CSRF: every unsafe form or htmx request needs the session's token; JSON is exempt."""

from fastapi.testclient import TestClient

from tests.conftest import csrf_token


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
