"""Tempo as a trace source, on answers recorded from a real Tempo.

Kiali (Apache-2.0) keeps two answers its Tempo client is tested on, recorded from Tempo
serving Istio's Bookinfo demo (tests/data/tempo/recorded/README.md): a ``/api/search``
answer and a ``/api/traces/<id>`` answer with eight spans across four services. The other
Tempo tests (tests/integrations/test_tempo.py) use answers written from Tempo's
documentation; these check the reader against what a Tempo actually sent. The expected
figures are computed here from the raw JSON, not taken from the reader.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from portal.integrations.tempo import TempoTraceSource
from portal.integrations.trace_source import TraceQuery
from portal.traces.waterfall import build_waterfall

RECORDED = Path(__file__).parent.parent / "data" / "tempo" / "recorded"
TRACE_ID = "3ba55609c3cde49649cd77d1f9dcd936"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def tempo() -> TempoTraceSource:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/search":
            return httpx.Response(200, content=(RECORDED / "search.json").read_bytes())
        if request.url.path == f"/api/traces/{TRACE_ID}":
            return httpx.Response(200, content=(RECORDED / "trace_v1.json").read_bytes())
        return httpx.Response(404, text="trace not found")

    return TempoTraceSource("http://tempo.test", 2.0, httpx.MockTransport(answer), trace_api="v1")


def hex_of(base64_id: str) -> str:
    return base64.b64decode(base64_id).hex()


def test_a_recorded_search_answer_reads_as_its_trace() -> None:
    (raw,) = recorded("search.json")["traces"]
    (summary,) = tempo().search(TraceQuery())
    assert summary.trace_id == raw["traceID"]
    assert summary.root_service == raw["rootServiceName"] == "istio-ingressgateway.istio-system"
    assert summary.root_operation == raw["rootTraceName"]
    started = EPOCH + timedelta(microseconds=int(raw["startTimeUnixNano"]) // 1000)
    assert summary.start == started
    assert summary.duration_ms == raw["durationMs"]
    assert summary.span_count == raw["spanSets"][0]["matched"]
    assert summary.error is False


def test_a_recorded_trace_keeps_every_span_service_and_parent() -> None:
    body = recorded("trace_v1.json")
    expected = {}
    for batch in body["batches"]:
        (service,) = (
            a["value"]["stringValue"]
            for a in batch["resource"]["attributes"]
            if a["key"] == "service.name"
        )
        for scope in batch["scopeSpans"]:
            for span in scope["spans"]:
                parent = span.get("parentSpanId")
                expected[hex_of(span["spanId"])] = (service, hex_of(parent) if parent else None)
    trace = tempo().trace(TRACE_ID.upper())
    assert trace is not None and trace.trace_id == TRACE_ID
    assert {span.span_id: (span.service, span.parent_span_id) for span in trace.spans} == expected
    assert len(expected) == 8


def test_the_recorded_trace_nests_as_bookinfo_calls() -> None:
    trace = tempo().trace(TRACE_ID)
    assert trace is not None
    waterfall = build_waterfall(trace)
    assert waterfall is not None
    rows = [(row.depth, row.span.service, row.span.kind) for row in waterfall.rows]
    # The gateway calls productpage, which calls details and reviews; reviews calls ratings.
    assert rows == [
        (0, "istio-ingressgateway.istio-system", "CLIENT"),
        (1, "productpage.bookinfo", "SERVER"),
        (2, "productpage.bookinfo", "CLIENT"),
        (3, "details.bookinfo", "SERVER"),
        (2, "productpage.bookinfo", "CLIENT"),
        (3, "reviews.bookinfo", "SERVER"),
        (4, "reviews.bookinfo", "CLIENT"),
        (5, "ratings.bookinfo", "SERVER"),
    ]
    assert not any(row.orphan for row in waterfall.rows)
    assert waterfall.services[0].name == "istio-ingressgateway.istio-system"  # the root's colour
