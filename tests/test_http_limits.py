"""The request body limit (PORTAL_MAX_BODY_BYTES) and unknown fields in API requests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.config import Settings
from tests.conftest import csrf_token
from tests.databases import SQLITE_ONLY

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

LIMIT = 2000


@pytest.fixture
def small(settings: Settings) -> Iterator[TestClient]:
    """The app with a 2000 byte body limit."""
    with TestClient(create_app(settings.model_copy(update={"max_body_bytes": LIMIT}))) as client:
        yield client


def scaffold_body(size: int) -> bytes:
    """A scaffold request of exactly ``size`` bytes (its description pads it)."""
    empty = {"template": "fastapi-service", "answers": {"description": ""}}
    padding = size - len(json.dumps(empty).encode())
    body = json.dumps({"template": "fastapi-service", "answers": {"description": "x" * padding}})
    assert len(body) == size
    return body.encode()


def chunks(body: bytes, size: int = 500) -> Iterator[bytes]:
    """Stream ``body`` in pieces, so it goes without Content-Length (chunked)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


JSON = {"content-type": "application/json"}


def test_a_declared_length_over_the_limit_is_refused_before_the_app_reads(
    small: TestClient,
) -> None:
    # The body itself is small: only the declared length can have refused it.
    response = small.post(
        "/api/scaffold", content=b"{}", headers={**JSON, "content-length": "2001"}
    )
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "The request body is larger than the portal's limit of 2000 bytes (PORTAL_MAX_BODY_BYTES)."
    )


def test_a_chunked_json_body_is_counted_as_it_streams(small: TestClient) -> None:
    over = small.post("/api/scaffold", content=chunks(scaffold_body(LIMIT + 1)), headers=JSON)
    assert "content-length" not in over.request.headers
    assert over.status_code == 413 and "2000 bytes" in over.json()["detail"]
    at_limit = small.post("/api/scaffold", content=chunks(scaffold_body(LIMIT)), headers=JSON)
    assert at_limit.status_code == 401  # read in full, then refused for being anonymous


def test_a_chunked_form_is_counted_too(small: TestClient) -> None:
    token = csrf_token(small)
    form = f"csrf_token={token}&locations={'x' * LIMIT}".encode()
    headers = {"content-type": "application/x-www-form-urlencoded", "accept": "text/html"}
    response = small.post("/catalog/import", content=chunks(form), headers=headers)
    assert response.status_code == 413
    assert "text/html" in response.headers["content-type"] and "2000 bytes" in response.text


def test_the_default_limit_refuses_a_5_mb_field(client: TestClient) -> None:
    body = {"template": "fastapi-service", "answers": {}, "padding": "x" * 5_000_000}
    response = client.post("/api/scaffold", json=body)
    assert response.status_code == 413 and "1048576 bytes" in response.json()["detail"]


@pytest.mark.parametrize("length", ["12x", "²", "-1", "1, 2"])
def test_an_unreadable_content_length_is_a_400(small: TestClient, length: str) -> None:
    response = small.post(
        "/api/scaffold",
        content=b"{}",
        headers={b"content-type": b"application/json", b"content-length": length.encode("latin-1")},
    )
    assert response.status_code == 400 and "Content-Length" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/scaffold", {"template": "fastapi-service", "answers": {}, "dry_run": True}),
        ("/api/changes/x/revise", {"answers": {}, "dry_run": True}),
        ("/api/changes/x/reject", {"comment": "no", "dry_run": True}),
        ("/api/changes/x/request-changes", {"comment": "no", "dry_run": True}),
        ("/api/templates", {"url": "https://git.example/t.git", "ref": "v1", "dry_run": True}),
    ],
)
def test_unknown_top_level_fields_are_refused_by_name(
    client: TestClient, path: str, body: dict[str, object]
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json() == {
        "detail": "the request is invalid",
        "errors": {"body.dry_run": "Extra inputs are not permitted"},
    }
