"""The embedded store: writes and summaries, search filters, trace order, retention pruning.

Runs on SQLite and, with PORTAL_TEST_DATABASE_URL, on PostgreSQL (the ``engine`` fixture).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from sqlalchemy import Engine

from portal.integrations.trace_source import TraceQuery
from portal.traces import store as store_module
from portal.traces.models import from_ns, to_ns
from portal.traces.otlp import decode
from portal.traces.retention import TraceRetention
from portal.traces.source import EmbeddedTraceSource
from portal.traces.store import prune, write_spans
from tests.traces.otlp_requests import BASE_NS, SpanSpec, export, new_span_id, new_trace_id

MS = 1_000_000


def store(engine: Engine, service: str, *specs: SpanSpec) -> None:
    decoded = decode(export(service, specs), 10_000, 4096)
    write_spans(engine, decoded.spans, decoded.attributes)


def trace(
    engine: Engine,
    service: str,
    name: str,
    start_ms: int,
    duration_ms: int,
    *,
    error: bool = False,
    attributes: dict[str, str | int | bool] | None = None,
) -> str:
    """Store a one-span trace; return its id."""
    trace_id = new_trace_id()
    start = BASE_NS + start_ms * MS
    spec = SpanSpec(trace_id, new_span_id(), name, "", start, start + duration_ms * MS, error)
    spec.attributes = attributes or {}
    store(engine, service, spec)
    return trace_id


@pytest.fixture
def traces(engine: Engine) -> dict[str, str]:
    """Four traces of two services, oldest first."""
    return {
        "slow": trace(engine, "air-quality", "GET /forecast", 0, 900),
        "failed": trace(engine, "air-quality", "GET /api", 1000, 20, error=True),
        "tagged": trace(engine, "rag", "POST /ask", 2000, 50, attributes={"user.tier": "gold"}),
        "newest": trace(engine, "rag", "GET /health", 3000, 1, attributes={"ok": True}),
    }


def found(engine: Engine, **query: object) -> list[str]:
    return [s.trace_id for s in EmbeddedTraceSource(engine).search(TraceQuery(**query))]  # type: ignore[arg-type]


def test_search_filters(engine: Engine, traces: dict[str, str]) -> None:
    t = traces
    assert found(engine) == [t["newest"], t["tagged"], t["failed"], t["slow"]]
    assert found(engine, service="air-quality") == [t["failed"], t["slow"]]
    assert found(engine, service="air") == []  # a whole service name, not a part
    assert found(engine, operation="POST /ask") == [t["tagged"]]
    assert found(engine, service="rag", operation="GET /forecast") == []
    assert found(engine, min_duration_ms=50) == [t["tagged"], t["slow"]]
    assert found(engine, max_duration_ms=20) == [t["newest"], t["failed"]]
    assert found(engine, errors_only=True) == [t["failed"]]
    assert found(engine, attribute=("user.tier", "gold")) == [t["tagged"]]
    assert found(engine, attribute=("ok", "true")) == [t["newest"]]
    assert found(engine, attribute=("service.name", "rag")) == [t["newest"], t["tagged"]]
    start, end = from_ns(BASE_NS + 1000 * MS), from_ns(BASE_NS + 2000 * MS)
    assert found(engine, start=start, end=end) == [t["tagged"], t["failed"]]
    assert found(engine, limit=2) == [t["newest"], t["tagged"]]


def test_service_names_with_like_wildcards_match_literally(engine: Engine) -> None:
    trace(engine, "a_b", "x", 0, 1)
    assert found(engine, service="a%") == []
    assert len(found(engine, service="a_b")) == 1


def test_a_trace_holds_its_spans_in_start_order(engine: Engine) -> None:
    trace_id, root = new_trace_id(), new_span_id()
    later = SpanSpec(trace_id, new_span_id(), "b", root, BASE_NS + 2 * MS, BASE_NS + 3 * MS)
    earlier = SpanSpec(trace_id, new_span_id(), "a", root, BASE_NS + MS, BASE_NS + 4 * MS)
    store(engine, "svc", later, SpanSpec(trace_id, root, "root"), earlier)
    found_trace = EmbeddedTraceSource(engine).trace(trace_id.upper())
    assert found_trace is not None
    assert [span.name for span in found_trace.spans] == ["root", "a", "b"]
    assert EmbeddedTraceSource(engine).trace(new_trace_id()) is None
    assert EmbeddedTraceSource(engine).trace("not-an-id") is None


def test_prune_deletes_old_traces_whole(engine: Engine, traces: dict[str, str]) -> None:
    cutoff = from_ns(BASE_NS + 1500 * MS)
    assert prune(engine, cutoff) == 2
    assert found(engine) == [traces["newest"], traces["tagged"]]
    with engine.connect() as connection:
        for table in ("trace_span", "trace_attribute", "trace_summary"):
            ids = set(connection.scalars(sa.text(f"SELECT trace_id FROM {table}")))
            assert ids == {traces["newest"], traces["tagged"]}, table


def test_retention_thread_prunes_and_stops(engine: Engine) -> None:
    old = trace(engine, "svc", "old", 0, 1)
    retention = TraceRetention(engine, timedelta(days=3))
    # BASE_NS is in 2027: a trace from 2020 is past any retention.
    store(
        engine,
        "svc",
        SpanSpec(
            new_trace_id(),
            new_span_id(),
            "ancient",
            "",
            1_600_000_000 * 10**9,
            1_600_000_001 * 10**9,
        ),
    )
    assert to_ns(from_ns(BASE_NS)) == BASE_NS
    retention.start()
    retention.stop()  # the first pass runs at start; stop waits for it
    assert found(engine) == [old]
    assert retention._thread is None


def stored(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


def test_a_trace_over_several_requests_is_summarised_from_every_span_once(engine: Engine) -> None:
    trace_id, root, early_orphan, late_orphan = (new_trace_id(), *(new_span_id() for _ in "abc"))
    child = SpanSpec(trace_id, new_span_id(), "db", root, BASE_NS + 2 * MS, BASE_NS + 9 * MS)
    child.error = True
    # Parentless spans arrive before the real root; the earliest parentless one is the root.
    late = SpanSpec(trace_id, late_orphan, "late", "", BASE_NS + 5 * MS, BASE_NS + 6 * MS)
    early = SpanSpec(trace_id, early_orphan, "early", "", BASE_NS + 3 * MS, BASE_NS + 4 * MS)
    store(engine, "db-service", child, child)  # a span twice in one request
    store(engine, "worker", late)
    assert found_summary(engine, trace_id)[:2] == ("worker", "late")
    store(engine, "worker", early, late)  # the late one again: an exporter's retry
    assert found_summary(engine, trace_id)[:2] == ("worker", "early")
    store(engine, "gateway", SpanSpec(trace_id, root, "GET /", "", BASE_NS + MS, BASE_NS + 8 * MS))
    store(engine, "db-service", child)
    summary = EmbeddedTraceSource(engine).search(TraceQuery())[0]
    assert (summary.trace_id, summary.root_service, summary.root_operation) == (
        trace_id,
        "gateway",
        "GET /",
    )
    assert (summary.span_count, summary.error, summary.duration_ms) == (4, True, 8)
    assert summary.start == from_ns(BASE_NS + MS)
    assert summary.services == ("db-service", "gateway", "worker")
    assert stored(engine, "trace_span") == 4


def found_summary(engine: Engine, trace_id: str) -> tuple[Any, ...]:
    [summary] = EmbeddedTraceSource(engine).search(TraceQuery())
    assert summary.trace_id == trace_id
    return (summary.root_service, summary.root_operation, summary.span_count)


def _any(value: object) -> AnyValue:
    if isinstance(value, dict):
        pairs = [KeyValue(key=k, value=_any(v)) for k, v in value.items()]
        return AnyValue(kvlist_value=KeyValueList(values=pairs))
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_any(item) for item in value]))
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def test_attributes_resource_and_events_read_back_as_sent(engine: Engine) -> None:
    spec = SpanSpec(new_trace_id(), new_span_id(), "ask\x00me")
    request = export("rag", [spec])
    request.resource_spans[0].resource.attributes.append(
        KeyValue(key="host.name", value=_any("héllo ☃"))
    )
    span = request.resource_spans[0].scope_spans[0].spans[0]
    sent = {
        "big": 2**62,
        "ratio": 0.25,
        "flag": False,
        "nested": {"list": [1, "two", {"deep": True}], "empty": []},
        "text": 'quote " back\\slash \u2028 \U0001d11e',
    }
    span.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in sent.items())
    # Neither a NaN nor a NUL fits every database: they are stored in a form that does.
    span.attributes.append(KeyValue(key="nan", value=_any(float("nan"))))
    span.attributes.append(KeyValue(key="minus", value=_any(float("-inf"))))
    span.attributes.append(KeyValue(key="nul\x00key", value=_any("nul\x00value")))
    span.events.append(
        OtlpSpan.Event(
            time_unix_nano=BASE_NS + 1000,
            name="exception",
            attributes=[KeyValue(key="exception.type", value=_any("ValueError"))],
        )
    )
    decoded = decode(request, 10, 4096)
    write_spans(engine, decoded.spans, decoded.attributes)
    trace = EmbeddedTraceSource(engine).trace(spec.trace_id)
    assert trace is not None
    [read] = trace.spans
    assert read.name == "ask\ufffdme"
    assert read.attributes == sent | {
        "nan": "NaN",
        "minus": "-Infinity",
        "nul\ufffdkey": "nul\ufffdvalue",
    }
    assert read.resource == {"service.name": "rag", "host.name": "héllo ☃"}
    [event] = read.events
    assert (event.name, event.time, event.attributes) == (
        "exception",
        from_ns(BASE_NS + 1000),
        {"exception.type": "ValueError"},
    )
    assert found(engine, attribute=("nul\ufffdkey", "nul\ufffdvalue")) == [spec.trace_id]


def test_a_write_failing_midway_stores_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = trace(engine, "svc", "first", 0, 1)

    def fail(*_: object) -> None:
        raise sa.exc.OperationalError("UPDATE trace_summary", {}, Exception("disk full"))

    # The last step of a write: spans, pairs and the new trace's summary are in by then.
    monkeypatch.setattr(store_module, "_update_summaries", fail)
    spans = [
        SpanSpec(known, new_span_id(), "second", attributes={"k": "v"}),
        SpanSpec(new_trace_id(), new_span_id(), "other"),
    ]
    with pytest.raises(sa.exc.OperationalError):
        store(engine, "svc", *spans)
    assert (stored(engine, "trace_span"), stored(engine, "trace_summary")) == (1, 1)
    assert stored(engine, "trace_attribute") == 1  # service.name of the first trace
    assert found_summary(engine, known) == ("svc", "first", 1)


def test_concurrent_requests_with_spans_of_the_same_traces_lose_no_count(
    engine: Engine,
) -> None:
    trace_ids = sorted(new_trace_id() for _ in range(6))
    writers, rounds = 4, 5
    # Every writer sends each trace a span of its own per round, plus one span all send.
    shared = {trace_id: new_span_id() for trace_id in trace_ids}
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            start.wait()
            for _ in range(rounds):
                specs = [SpanSpec(t, new_span_id(), "op", shared[t]) for t in trace_ids]
                specs += [SpanSpec(t, shared[t], "root") for t in reversed(trace_ids)]
                store(engine, "svc", *specs)
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    summaries = EmbeddedTraceSource(engine).search(TraceQuery(limit=100))
    assert sorted(s.trace_id for s in summaries) == trace_ids
    assert {s.span_count for s in summaries} == {writers * rounds + 1}
    assert {s.root_operation for s in summaries} == {"root"}
    assert stored(engine, "trace_span") == len(trace_ids) * (writers * rounds + 1)
