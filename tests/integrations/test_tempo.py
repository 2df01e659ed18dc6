"""Tempo as a trace source: answers written from Tempo's documented API, and real sockets.

Tempo cannot run here (see tests/data/tempo/README.md), so a fake transport serves the
recorded answers; timeouts and refused connections use a real loopback HTTP server.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar, Literal

import httpx
import pytest

from portal.integrations.tempo import TempoTraceSource, read_id
from portal.integrations.trace_source import (
    TraceQuery,
    TraceSource,
    TraceSourceError,
    TraceSourceUnavailableError,
)
from portal.integrations.traceql import traceql
from tests.loopback_http import serving

DATA = Path(__file__).parent.parent / "data" / "tempo"
AIR = "4bf92f3577b34da6a3ce929d0e0e4736"
ERROR = "0af7651916cd43dd8448eb211c80319c"
GENAI = "5b8efff798038103d269b633813fc60c"
TRACES = {
    f"/api/v2/traces/{AIR}": "trace_v2_air_quality.json",
    f"/api/v2/traces/{GENAI}": "trace_v2_genai.json",
    f"/api/traces/{ERROR}": "trace_v1_error.json",
}


class FakeTempoTransport(httpx.MockTransport):
    """A fake Tempo: serves the recorded answers and keeps every request it was sent."""

    def __init__(self, search: str = "search.json", status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.search_file = search
        self.status = status
        super().__init__(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/tempo")
        if path == "/api/search":
            return httpx.Response(self.status, content=(DATA / self.search_file).read_bytes())
        if path in TRACES:
            return httpx.Response(200, content=(DATA / TRACES[path]).read_bytes())
        return httpx.Response(404, text="trace not found")


def source(
    transport: httpx.BaseTransport, trace_api: Literal["v1", "v2"] = "v2"
) -> TempoTraceSource:
    """Tempo behind a path prefix, with credentials in its URL (never shown in messages)."""
    return TempoTraceSource(
        "http://user:secret@tempo.test/tempo", 2.0, transport, trace_api=trace_api
    )


def test_search_reads_summaries_newest_first() -> None:
    tempo: TraceSource = source(FakeTempoTransport())  # mypy checks the protocol here
    assert tempo.kind == "tempo"
    summaries = tempo.search(TraceQuery())
    assert [s.trace_id for s in summaries] == [GENAI, ERROR, AIR]  # ERROR padded back to 32
    genai, error, air = summaries
    assert air.root_service == "air-quality-monitor" and air.root_operation == "POST /api/check"
    assert air.start == datetime(2024, 5, 14, 9, 30, tzinfo=UTC)
    assert (air.duration_ms, air.span_count, air.error) == (183.0, 2, False)
    assert (error.span_count, error.error) == (2, True)
    assert genai.services == ("rag-llm-service",) and genai.span_count == 4


def test_search_sends_traceql_time_range_and_limit() -> None:
    transport = FakeTempoTransport()
    query = TraceQuery(
        service="air-quality-monitor",
        errors_only=True,
        start=datetime(2024, 5, 14, 9, 0, 0, 500000, tzinfo=UTC),
        end=datetime(2024, 5, 14, 10, 0, 0, 500000, tzinfo=UTC),
        limit=2,
    )
    found = source(transport).search(query)
    assert len(found) == 2
    (sent,) = transport.requests
    assert sent.url.path == "/tempo/api/search"
    assert sent.headers["accept"] == "application/json"
    assert dict(sent.url.params) == {
        "q": '{ resource.service.name = "air-quality-monitor" } && { status = error }',
        "start": "1715677200",  # floor and ceil: the range covers the whole query
        "end": "1715680801",
        "limit": "2",
        "spss": "3",
    }


def test_a_hostile_value_reaches_tempo_as_one_literal() -> None:
    transport = FakeTempoTransport()
    hostile = 'x" } || { true } && { name = "\\'
    source(transport).search(TraceQuery(operation=hostile))
    (sent,) = transport.requests
    assert sent.url.params["q"] == traceql(TraceQuery(operation=hostile))
    assert sent.url.params["q"] == '{ name = "x\\" } || { true } && { name = \\"\\\\" }'


def test_an_older_search_answer() -> None:
    (summary,) = source(FakeTempoTransport("search_without_service_stats.json")).search(
        TraceQuery(errors_only=True)
    )
    assert summary.trace_id == GENAI
    assert summary.root_service is None and summary.root_operation is None
    assert (summary.duration_ms, summary.span_count, summary.error) == (0.0, 2, True)
    assert summary.services == ()


def test_the_request_trace_nests_the_open_meteo_call() -> None:
    trace = source(FakeTempoTransport()).trace(AIR.upper())
    assert trace is not None and trace.trace_id == AIR
    request, client = trace.spans
    assert (request.name, request.kind, request.parent_span_id) == (
        "POST /api/check",
        "SERVER",
        None,
    )
    assert (client.name, client.kind, client.status) == ("open-meteo air-quality", "CLIENT", "OK")
    assert client.parent_span_id == request.span_id == "00f067aa0ba902b7"
    assert client.service == "air-quality-monitor"
    assert client.attributes["http.response.status_code"] == 200
    assert request.resource["service.version"] == "0.3.1"
    assert round(request.duration_ms, 1) == 183.4


def test_a_v1_trace_with_base64_ids_and_an_exception() -> None:
    trace = source(FakeTempoTransport(), trace_api="v1").trace(ERROR)
    assert trace is not None
    request, client = trace.spans
    assert request.span_id == "b7ad6b7169203331" and client.span_id == "e457b5a2e4d86bd1"
    assert client.parent_span_id == request.span_id and client.trace_id == ERROR
    assert (request.kind, request.status) == ("SERVER", "ERROR")
    assert request.status_message == "Open-Meteo did not answer in time"
    (event,) = client.events
    assert event.name == "exception" and event.attributes["exception.escaped"] is False
    assert event.time.microsecond == 12400 and event.time.second == 3


def test_a_genai_span_keeps_model_and_tokens() -> None:
    trace = source(FakeTempoTransport()).trace(GENAI)
    assert trace is not None
    assert [span.name for span in trace.spans] == [
        "POST /api/ask",
        "retrieve",
        "embed",
        "chat llama3.1:8b",
    ]
    chat = trace.spans[-1]
    assert chat.attributes["gen_ai.request.model"] == "llama3.1:8b"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 812
    assert chat.attributes["gen_ai.request.temperature"] == 0.2
    assert chat.parent_span_id == "eee19b7ec3c1b173"


@pytest.mark.parametrize("trace_id", ["0" * 32, "xyz", "../../api/search?q=x", AIR + "0"])
def test_a_malformed_id_never_reaches_tempo(trace_id: str) -> None:
    transport = FakeTempoTransport()
    assert source(transport).trace(trace_id) is None
    assert transport.requests == []


def test_an_unknown_trace_is_none() -> None:
    assert source(FakeTempoTransport()).trace("1" * 32) is None


def test_a_refused_query_names_the_path_and_tempo_s_reason() -> None:
    tempo = source(FakeTempoTransport("search_bad_query.txt", status=400))
    with pytest.raises(TraceSourceError) as refused:
        tempo.search(TraceQuery())
    assert not isinstance(refused.value, TraceSourceUnavailableError)
    message = str(refused.value)
    assert "/api/search (400)" in message and "invalid TraceQL query" in message
    assert "secret" not in message and "http://tempo.test/tempo" in message


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<html>proxy</html>", "did not answer JSON"),
        (b'{"traces": {}}', "traces is not a list"),
        (b'{"traces": [{"traceID": "zz"}]}', "neither hex nor base64"),
        (b'{"traces": [{"traceID": "QUJD"}]}', "is not 16 bytes"),
    ],
)
def test_an_unusable_search_answer(body: bytes, said: str) -> None:
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, content=body))
    with pytest.raises(TraceSourceError, match=said) as bad:
        source(transport).search(TraceQuery())
    assert "/api/search" in str(bad.value)


def test_an_unusable_trace_answer_names_its_path() -> None:
    broken = {"batches": [{"scopeSpans": [{"spans": [{"traceId": AIR, "spanId": "x"}]}]}]}
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, json=broken))
    with pytest.raises(TraceSourceError, match=f"/api/v2/traces/{AIR}: 'x' is neither"):
        source(transport).trace(AIR)


def test_a_server_error_is_unavailable() -> None:
    transport = httpx.MockTransport(lambda _request: httpx.Response(503, text="too busy"))
    with pytest.raises(TraceSourceUnavailableError, match="answered 503 to /api/search: too busy"):
        source(transport).search(TraceQuery())


@pytest.mark.parametrize(
    ("raw", "size", "expected"),
    [
        ("S/kvNXezTaajzpKdDg5HNg==", 16, AIR),
        ("AAAAAAAAAAA=", 8, None),
        ("", 8, None),
        ("ABC", 8, "0000000000000abc"),
        ("00F067AA0BA902B7", 8, "00f067aa0ba902b7"),
    ],
)
def test_ids(raw: str, size: int, expected: str | None) -> None:
    assert read_id(raw, size) == expected


class SlowTempo(BaseHTTPRequestHandler):
    """Answers after the client has given up."""

    release: ClassVar[threading.Event] = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        self.release.wait(10)
        try:
            self.send_response(200)
            self.end_headers()
        except OSError:
            pass  # the client is gone


@pytest.fixture
def slow_tempo() -> Iterator[int]:
    SlowTempo.release.clear()
    with serving(SlowTempo, "slow-tempo") as port:
        try:
            yield port
        finally:
            SlowTempo.release.set()


def test_a_slow_tempo_is_unavailable(slow_tempo: int) -> None:
    tempo = TempoTraceSource(f"http://127.0.0.1:{slow_tempo}", timeout=0.2)
    with pytest.raises(TraceSourceUnavailableError, match=r"no answer within 0\.2 s"):
        tempo.search(TraceQuery())
    with pytest.raises(TraceSourceUnavailableError, match="is not reachable"):
        tempo.trace(AIR)


def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tempo = TempoTraceSource(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(TraceSourceUnavailableError, match="not reachable") as refused:
        tempo.search(TraceQuery())
    assert "refused" in str(refused.value).lower()


def test_the_recorded_files_are_json() -> None:
    for path in DATA.glob("*.json"):
        assert isinstance(json.loads(path.read_text()), dict), path.name
