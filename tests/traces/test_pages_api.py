"""GET /api/traces and /api/traces/{trace_id} on a fake source: shapes, 422, 400, 404, 503."""

from __future__ import annotations

from fastapi.testclient import TestClient

from portal.integrations.trace_source import TraceSourceUnavailableError
from tests.traces.fake_source import ERROR_TRACE, GENAI_TRACE, REQUEST_TRACE, FakeTraceSource
from tests.traces.test_pages import client, source

__all__ = ["client", "source"]  # the fixtures of the pages' tests


def test_search_answers_summaries(client: TestClient) -> None:
    response = client.get("/api/traces?errors=true")
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "fake"
    assert [item["trace_id"] for item in body["items"]] == [ERROR_TRACE]
    item = body["items"][0]
    assert item["error"] is True and item["root_operation"] == "GET /aqi"
    assert item["url"] == f"/traces/{ERROR_TRACE}" and item["span_count"] == 1


def test_bad_fields_are_422_naming_them(client: TestClient, source: FakeTraceSource) -> None:
    response = client.get("/api/traces?max_ms=-3&to=yesterday-ish")
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"max_ms", "to"}
    assert source.queries == []


def test_trace_spans_in_tree_order_with_depth(client: TestClient) -> None:
    response = client.get(f"/api/traces/{REQUEST_TRACE}")
    assert response.status_code == 200
    body = response.json()
    assert body["span_count"] == 4 and body["services"] == ["air-quality", "aqi-model"]
    assert [(s["name"], s["depth"]) for s in body["spans"]] == [
        ("GET /aqi", 0),
        ("validate", 1),
        ("GET api.open-meteo.com", 1),
        ("predict", 1),
    ]
    assert body["spans"][0]["attributes"]["http.response.status_code"] == 200
    assert body["spans"][0]["resource"]["service.name"] == "air-quality"
    assert abs(body["duration_ms"] - 120) < 1e-6


def test_trace_events_and_genai_attributes(client: TestClient) -> None:
    failed = client.get(f"/api/traces/{ERROR_TRACE}").json()
    event = failed["spans"][0]["events"][0]
    assert event["name"] == "exception" and event["attributes"]["exception.type"] == "ValueError"
    assert failed["error_count"] == 1
    genai = client.get(f"/api/traces/{GENAI_TRACE}").json()
    assert genai["spans"][1]["attributes"]["gen_ai.usage.input_tokens"] == 412


def test_bad_and_unknown_ids(client: TestClient) -> None:
    bad = client.get("/api/traces/not-a-trace-id")
    assert bad.status_code == 400 and "32 hexadecimal" in bad.json()["detail"]
    missing = client.get(f"/api/traces/{'e' * 32}")
    assert missing.status_code == 404 and "e" * 32 in missing.json()["detail"]


def test_unavailable_source_is_503(client: TestClient, source: FakeTraceSource) -> None:
    source.failure = TraceSourceUnavailableError("connection refused")
    search = client.get("/api/traces")
    assert search.status_code == 503 and "connection refused" in search.json()["detail"]
    assert client.get(f"/api/traces/{REQUEST_TRACE}").status_code == 503


def test_the_operations_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/traces"]["get"]["responses"]) >= {"200", "422", "503"}
    assert set(paths["/api/traces/{trace_id}"]["get"]["responses"]) >= {"200", "400", "404", "503"}
