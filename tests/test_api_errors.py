"""Error answers of the JSON API: one 422 shape, declared refusals, 405 with ``Allow``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ADA

METHODS = {"get", "post", "put", "patch", "delete"}


def test_a_shape_error_names_the_field_and_where_it_was(client: TestClient) -> None:
    query = client.get("/api/catalog/entities", params={"limit": "many"})
    assert query.status_code == 422
    assert query.json()["detail"] == "the request is invalid"
    assert set(query.json()["errors"]) == {"query.limit"}
    missing = client.post("/api/scaffold", json={"answers": {}})
    assert missing.json()["errors"] == {"body.template": "Field required"}


def test_invalid_json_says_where(client: TestClient) -> None:
    response = client.post(
        "/api/scaffold", content=b'{"template": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    message = response.json()["errors"]["body"]
    assert message.startswith("invalid JSON at character 13: Expecting value"), message


def test_domain_refusals_have_the_same_shape(portal: TestClient) -> None:
    refused = portal.post(
        "/api/scaffold", json={"template": "nope", "answers": {}}, headers=ADA
    ).json()
    assert set(refused) == {"detail", "errors"} and "template" in refused["errors"]


def test_every_declared_status_has_a_json_body_model(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema.get("$ref"), (method, path, status)
            unsafe = method in {"post", "put", "patch", "delete"}
            declared = set(operation["responses"])
            assert "400" in declared, (method, path)
            if unsafe:
                assert {"403", "413"} <= declared, (method, path)


def test_unsupported_methods_answer_405_with_allow(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for template, operations in document["paths"].items():
        path = template.replace("{", "").replace("}", "")  # any value fits the templates
        declared = {method.upper() for method in operations} & {m.upper() for m in METHODS}
        for method in ("TRACE", *sorted({m.upper() for m in METHODS} - declared)):
            # JSON: exempt from the CSRF check, which would answer an unsafe method first.
            response = client.request(method, path, headers={"content-type": "application/json"})
            assert response.status_code == 405, (method, path, response.status_code)
            allowed = {part.strip() for part in response.headers["allow"].split(",")}
            assert declared <= allowed, (method, path, allowed)


def test_a_browser_gets_the_405_page_with_allow(client: TestClient) -> None:
    response = client.request("TRACE", "/catalog", headers={"accept": "text/html"})
    assert response.status_code == 405
    assert "text/html" in response.headers["content-type"]
    assert "GET" in response.headers["allow"]
