"""The OTLP/HTTP receiver (POST /v1/traces): encodings, bad input, tokens.

Runs on SQLite and, with PORTAL_TEST_DATABASE_URL, on PostgreSQL (the ``settings`` fixture).
Every refusal is checked to have stored nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from sqlmodel import Session

from portal.app import create_app
from portal.auth.models import PROPOSE_SCOPE, TRACES_WRITE_SCOPE, ServiceToken
from portal.config import AuthMode, Settings
from portal.integrations.trace_source import TraceQuery
from portal.traces.source import EmbeddedTraceSource
from tests.databases import SQLITE_ONLY
from tests.traces.otlp_requests import SpanSpec, batch, export, new_span_id, new_trace_id

# The receiver over the trace store, whose own tests run on both databases.
pytestmark = SQLITE_ONLY

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def loopback(settings: Settings) -> Iterator[TestClient]:
    """The portal as a sender on the same machine sees it (local mode: no token needed)."""
    with TestClient(create_app(settings), client=("127.0.0.1", 40000)) as client:
        yield client


@pytest.fixture
def remote(settings: Settings) -> Iterator[TestClient]:
    """The portal as a sender on another machine sees it: a token is needed."""
    with TestClient(create_app(settings), client=("10.1.2.3", 40000)) as client:
        yield client


def spans_stored(client: TestClient) -> int:
    with client.app.state.engine.connect() as connection:  # type: ignore[attr-defined]
        return int(connection.scalar(sa.text("SELECT count(*) FROM trace_span")) or 0)


def source(client: TestClient) -> EmbeddedTraceSource:
    return EmbeddedTraceSource(client.app.state.engine)  # type: ignore[attr-defined]


def add_token(client: TestClient, scopes: list[str], services: list[str]) -> str:
    """Store a token directly (creating one through the API needs a catalog) and return it."""
    secret = "s" * 43
    token_id = hashlib.sha256(repr((scopes, services)).encode()).hexdigest()[:12]
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        session.add(
            ServiceToken(
                id=token_id,
                name="exporter",
                secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
                scopes=scopes,
                services=services,
                created_by="user:default/ada.lovelace",
            )
        )
        session.commit()
    return f"pst_{token_id}_{secret}"


def status_of(content: bytes) -> Status:
    status = Status()
    status.ParseFromString(content)
    return status


def test_protobuf_export_is_stored_and_answered_in_protobuf(loopback: TestClient) -> None:
    response = loopback.post("/v1/traces", content=batch("air-quality", 40), headers=PROTOBUF)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert not answer.HasField("partial_success")
    assert spans_stored(loopback) == 40
    summaries = source(loopback).search(TraceQuery(limit=200))
    assert sorted(summary.span_count for summary in summaries) == [8] * 5
    assert {summary.root_operation for summary in summaries} == {"GET /api/air-quality"}


def test_gzip_export_is_stored(loopback: TestClient) -> None:
    body = gzip.compress(batch("air-quality", 16))
    headers = PROTOBUF | {"Content-Encoding": "gzip"}
    assert loopback.post("/v1/traces", content=body, headers=headers).status_code == 200
    assert spans_stored(loopback) == 16


def test_json_export_with_hex_ids_is_stored_and_answered_in_json(loopback: TestClient) -> None:
    trace_id, root, child = new_trace_id(), new_span_id(), new_span_id()
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "rag"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": root,
                                "name": "POST /ask",
                                "kind": 2,
                                "startTimeUnixNano": "1800000000000000000",
                                "endTimeUnixNano": "1800000000900000000",
                                "status": {"code": 2, "message": "boom"},
                                "attributes": [
                                    {
                                        "key": "gen_ai.usage.input_tokens",
                                        "value": {"intValue": "12"},
                                    }
                                ],
                            },
                            {
                                "traceId": trace_id,
                                "spanId": child,
                                "parentSpanId": root,
                                "name": "chat",
                                "startTimeUnixNano": "1800000000100000000",
                                "endTimeUnixNano": "1800000000800000000",
                            },
                        ]
                    }
                ],
            }
        ]
    }
    response = loopback.post("/v1/traces", content=json.dumps(document), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    trace = source(loopback).trace(trace_id)
    assert trace is not None
    assert [(span.span_id, span.parent_span_id) for span in trace.spans] == [
        (root, None),
        (child, root),
    ]
    first = trace.spans[0]
    assert (first.service, first.kind, first.status, first.status_message) == (
        "rag",
        "SERVER",
        "ERROR",
        "boom",
    )
    assert first.attributes == {"gen_ai.usage.input_tokens": 12}
    assert first.duration_ms == 900
    [summary] = source(loopback).search(TraceQuery(errors_only=True))
    assert (summary.trace_id, summary.error, summary.span_count) == (trace_id, True, 2)


def test_a_trace_split_over_two_requests_is_summarised_whole(loopback: TestClient) -> None:
    trace_id, root, child = new_trace_id(), new_span_id(), new_span_id()
    late_child = SpanSpec(
        trace_id, child, "db", root, 1_800_000_000_000_100_000, 1_800_000_002_000_000_000
    )
    late_child.error = True
    first = export("air-quality", [late_child]).SerializeToString()
    second = export("gateway", [SpanSpec(trace_id, root, "GET /")]).SerializeToString()
    for body in (first, second, first):  # the first again: an exporter's retry
        assert loopback.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    [summary] = source(loopback).search(TraceQuery())
    assert summary.span_count == 2
    assert (summary.root_service, summary.root_operation) == ("gateway", "GET /")
    assert summary.services == ("air-quality", "gateway")
    assert summary.error
    assert summary.duration_ms == 2000


def bad_ids() -> list[tuple[str, SpanSpec]]:
    trace_id, span_id = new_trace_id(), new_span_id()
    return [
        ("trace_id: an id of 8 bytes", SpanSpec(span_id, span_id)),
        ("trace_id: the id is all zeros", SpanSpec("0" * 32, span_id)),
        ("span_id: the id is all zeros", SpanSpec(trace_id, "0" * 16)),
        ("parent_span_id: an id of 16 bytes", SpanSpec(trace_id, span_id, "x", trace_id)),
        ("ends 1000 ns before it starts", SpanSpec(trace_id, span_id, "x", "", 5000, 4000)),
    ]


@pytest.mark.parametrize(("message", "bad"), bad_ids())
def test_an_invalid_span_refuses_the_whole_request(
    loopback: TestClient, message: str, bad: SpanSpec
) -> None:
    good = SpanSpec(new_trace_id(), new_span_id())
    body = export("air-quality", [good, bad]).SerializeToString()
    response = loopback.post("/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == 400
    status = status_of(response.content)
    assert message in status.message
    assert "resource_spans[0].scope_spans[0].spans[1]" in status.message
    assert spans_stored(loopback) == 0


def test_json_ids_that_are_not_hex_are_refused(loopback: TestClient) -> None:
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz" * 16}]}]}]}
    response = loopback.post("/v1/traces", content=json.dumps(document), headers=JSON)
    assert response.status_code == 400
    assert "resourceSpans[0].scopeSpans[0].spans[0].traceId" in response.json()["message"]


def test_truncated_protobuf_is_refused(loopback: TestClient) -> None:
    body = batch("air-quality", 8)
    response = loopback.post("/v1/traces", content=body[: len(body) // 2], headers=PROTOBUF)
    assert response.status_code == 400
    assert "not an ExportTraceServiceRequest" in status_of(response.content).message
    assert spans_stored(loopback) == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Content-Type": "text/plain"}, 415),
        ({}, 415),
        (PROTOBUF | {"Content-Encoding": "br"}, 415),
        (PROTOBUF | {"Content-Encoding": "gzip"}, 400),  # not gzip at all
    ],
)
def test_wrong_type_or_encoding_is_refused(
    loopback: TestClient, headers: dict[str, str], expected: int
) -> None:
    response = loopback.post("/v1/traces", content=batch("air-quality", 8), headers=headers)
    assert response.status_code == expected
    assert spans_stored(loopback) == 0


def test_a_50_mb_body_is_refused_unread(loopback: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # streamed without a length: counted as it arrives
        for _ in range(50):
            yield b"\0" * (1024 * 1024)

    response = loopback.post("/v1/traces", content=chunks(), headers=PROTOBUF)
    assert response.status_code == 413
    # The receiver's own limit and an OTLP status, not the portal-wide form limit.
    assert "PORTAL_TRACE_MAX_BODY_BYTES" in status_of(response.content).message
    assert spans_stored(loopback) == 0


def test_a_batch_larger_than_a_form_is_taken(loopback: TestClient) -> None:
    body = batch("air-quality", 9500, spans_per_trace=100)
    settings: Settings = loopback.app.state.settings  # type: ignore[attr-defined]
    assert settings.max_body_bytes < len(body) < settings.trace_max_body_bytes
    response = loopback.post("/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == 200, response.content[:300]
    assert spans_stored(loopback) == 9500


def test_a_gzip_bomb_is_refused(settings: Settings) -> None:
    small = settings.model_copy(update={"trace_max_body_bytes": 64 * 1024})
    with TestClient(create_app(small), client=("127.0.0.1", 1)) as client:
        body = gzip.compress(b"\0" * (1024 * 1024))
        headers = PROTOBUF | {"Content-Encoding": "gzip"}
        response = client.post("/v1/traces", content=body, headers=headers)
        assert response.status_code == 413
        assert "decompressed" in status_of(response.content).message


def test_over_the_span_limit_nothing_is_stored(settings: Settings) -> None:
    roomy = settings.model_copy(
        update={"max_body_bytes": 64 << 20, "trace_max_body_bytes": 64 << 20}
    )
    body = batch("air-quality", 100_000, spans_per_trace=100)
    with TestClient(create_app(roomy), client=("127.0.0.1", 1)) as client:
        response = client.post("/v1/traces", content=body, headers=PROTOBUF)
        assert response.status_code == 400
        message = status_of(response.content).message
        assert "100000 spans, more than the limit of 10000" in message
        assert spans_stored(client) == 0


def test_long_attribute_values_are_cut_and_reported(loopback: TestClient) -> None:
    spec = SpanSpec(new_trace_id(), new_span_id(), attributes={"db.statement": "x" * 10_000})
    body = export("air-quality", [spec]).SerializeToString()
    response = loopback.post("/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 0
    assert "1 attribute values" in answer.partial_success.error_message
    trace = source(loopback).trace(spec.trace_id)
    assert trace is not None
    value = trace.spans[0].attributes["db.statement"]
    assert len(value.encode()) <= 4096 and value.endswith("…[truncated]")


def test_a_remote_sender_needs_a_token(remote: TestClient) -> None:
    response = remote.post("/v1/traces", content=batch("air-quality", 8), headers=PROTOBUF)
    assert response.status_code == 401
    assert "traces:write" in status_of(response.content).message
    assert spans_stored(remote) == 0


def test_a_token_with_traces_write_sends_its_services_spans(remote: TestClient) -> None:
    token = add_token(remote, [TRACES_WRITE_SCOPE], ["air-quality"])
    headers = PROTOBUF | {"Authorization": f"Bearer {token}"}
    ok = remote.post("/v1/traces", content=batch("air-quality", 8), headers=headers)
    assert ok.status_code == 200
    other = remote.post("/v1/traces", content=batch("payments", 8), headers=headers)
    assert other.status_code == 403
    assert "may not send spans of payments" in status_of(other.content).message
    assert spans_stored(remote) == 8
    # The token writes traces, nothing else.
    assert remote.post("/api/tokens", json={}, headers=headers).status_code == 403


def test_a_token_without_the_scope_is_refused(remote: TestClient) -> None:
    token = add_token(remote, [PROPOSE_SCOPE], ["air-quality"])
    headers = PROTOBUF | {"Authorization": f"Bearer {token}"}
    response = remote.post("/v1/traces", content=batch("air-quality", 8), headers=headers)
    assert response.status_code == 403
    assert "lacks the scope traces:write" in status_of(response.content).message
    wrong = PROTOBUF | {"Authorization": f"Bearer {token[:-2]}xx"}
    assert (
        remote.post("/v1/traces", content=batch("air-quality", 8), headers=wrong).status_code == 401
    )
    assert spans_stored(remote) == 0


def test_behind_a_proxy_loopback_is_not_trusted(settings: Settings) -> None:
    proxied = settings.model_copy(update={"auth_mode": AuthMode.TRUSTED_HEADER})
    with TestClient(create_app(proxied), client=("127.0.0.1", 1)) as client:
        response = client.post("/v1/traces", content=batch("air-quality", 8), headers=PROTOBUF)
        assert response.status_code == 401


def test_with_tempo_the_receiver_points_there(settings: Settings) -> None:
    tempo = settings.model_copy(update={"tempo_url": "http://tempo.invalid:3200"})
    with TestClient(create_app(tempo), client=("127.0.0.1", 1)) as client:
        response = client.post("/v1/traces", content=batch("air-quality", 8), headers=PROTOBUF)
        assert response.status_code == 404
        assert "Tempo" in status_of(response.content).message
