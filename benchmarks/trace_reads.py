"""The traces benchmark's store of 1,000,000 spans: its fill, and the Traces pages' reads on it.

``fill`` writes synthetic spans through the receiver's own write path (no HTTP): traces of
1 to 40 spans over the last day across 20 services, 2% errors. ``search_timings`` prints
the p95 of the page's searches (target 100 ms) and ``waterfall_timings`` that of reading
and laying out one 500-span trace (target 150 ms). Run by :mod:`benchmarks.traces`.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine, text

from benchmarks.timing import percentile, timed
from portal.clock import utcnow
from portal.integrations.trace_source import TraceQuery
from portal.traces.models import to_ns
from portal.traces.source import EmbeddedTraceSource
from portal.traces.store import write_spans
from portal.traces.waterfall import build_waterfall

SERVICES = [f"service-{index:02d}" for index in range(20)]
SEARCH_TARGET_MS = 100.0
WATERFALL_TARGET_MS = 150.0
REPEATS = 30


def synthetic_batch(count: int, now_ns: int, rng: random.Random) -> list[dict[str, Any]]:
    """Return ``count`` span rows in traces of 1 to 40 spans over the day before ``now_ns``."""
    rows: list[dict[str, Any]] = []
    while len(rows) < count:
        trace_id = secrets.token_hex(16)
        start = now_ns - rng.randrange(86_400 * 10**9)
        services = rng.sample(SERVICES, 3)
        root = secrets.token_hex(8)
        error = rng.random() < 0.02
        for index in range(min(rng.randint(1, 40), count - len(rows))):
            begin = start + index * 1_000_000
            end = begin + rng.randrange(1, 500) * 1_000_000
            rows.append(
                {
                    "trace_id": trace_id,
                    "span_id": root if index == 0 else secrets.token_hex(8),
                    "parent_span_id": None if index == 0 else root,
                    "service": services[index % 3],
                    "name": "GET /api/items" if index == 0 else f"query {index % 7}",
                    "kind": "SERVER" if index == 0 else "CLIENT",
                    "start_ns": begin,
                    "end_ns": end,
                    "duration_ns": end - begin,
                    "status": "ERROR" if error and index == 0 else "OK",
                    "status_message": "",
                    "attributes": {"http.route": "/api/items", "index": index},
                    "resource": {"service.name": services[index % 3]},
                    "events": [],
                }
            )
    return rows


def fill(engine: Engine, total: int, chunk: int = 5000) -> float:
    """Write ``total`` synthetic spans through the store; return the seconds it took."""
    rng = random.Random(17)
    now_ns = to_ns(utcnow())
    started = time.perf_counter()
    written = 0
    while written < total:
        rows = synthetic_batch(min(chunk, total - written), now_ns, rng)
        pairs = {(r["trace_id"], "http.route", "/api/items") for r in rows}
        write_spans(engine, rows, pairs)
        written += len(rows)
    return time.perf_counter() - started


def _p95_ms(call: Callable[[], object]) -> float:
    return percentile(timed(call, REPEATS, warm_up=0), 0.95) * 1000


def search_timings(engine: Engine) -> None:
    """Print the p95 of the page's searches (latest, service, errors, duration, attribute)."""
    source = EmbeddedTraceSource(engine)
    day_ago = utcnow() - timedelta(days=1)
    queries = {
        "latest 50": TraceQuery(),
        "service": TraceQuery(service=SERVICES[0]),
        "errors only": TraceQuery(errors_only=True),
        "min 400 ms": TraceQuery(min_duration_ms=400),
        "service+1h": TraceQuery(service=SERVICES[1], start=utcnow() - timedelta(hours=1)),
        "attribute": TraceQuery(attribute=("http.route", "/api/items"), start=day_ago),
    }
    for label, query in queries.items():
        p95 = _p95_ms(partial(source.search, query))
        verdict = "ok" if p95 < SEARCH_TARGET_MS else "ABOVE TARGET"
        print(f"  search {label:<12} p95 {p95:8.1f} ms (target {SEARCH_TARGET_MS:.0f}) {verdict}")


def waterfall_timings(engine: Engine) -> None:
    """Write one 500-span trace; print the p95 of reading it back and laying it out."""
    now_ns = to_ns(utcnow())
    trace_id = secrets.token_hex(16)
    ids = [secrets.token_hex(8) for _ in range(500)]
    rows: list[dict[str, Any]] = []
    for index, span_id in enumerate(ids):
        begin = now_ns + index * 100_000
        end = begin + 50_000_000 - index * 90_000
        rows.append(
            {
                "trace_id": trace_id,
                "span_id": span_id,
                "parent_span_id": None if index == 0 else ids[(index - 1) // 4],  # a 4-ary tree
                "service": SERVICES[index % 3],
                "name": f"op {index % 11}",
                "kind": "INTERNAL",
                "start_ns": begin,
                "end_ns": end,
                "duration_ns": end - begin,
                "status": "OK",
                "status_message": "",
                "attributes": {"index": index},
                "resource": {"service.name": SERVICES[index % 3]},
                "events": [],
            }
        )
    write_spans(engine, rows, [])
    source = EmbeddedTraceSource(engine)

    def read_and_lay_out() -> None:
        trace = source.trace(trace_id)
        if trace is None or len(trace.spans) != 500:
            raise RuntimeError(f"the 500-span trace {trace_id} did not read back whole")
        build_waterfall(trace)

    p95 = _p95_ms(read_and_lay_out)
    verdict = "ok" if p95 < WATERFALL_TARGET_MS else "ABOVE TARGET"
    print(
        f"  waterfall of 500 spans p95 {p95:8.1f} ms (target {WATERFALL_TARGET_MS:.0f}) {verdict}"
    )


def analyse_without_autovacuum(engine: Engine) -> None:
    """ANALYZE the trace tables on a PostgreSQL server whose autovacuum is off.

    With autovacuum on (the default) the server analyses a table after a fill like this
    one; a test server with it off would otherwise plan the reads without statistics.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        if connection.scalar(text("SHOW autovacuum")) == "on":
            return
        connection.execute(text("ANALYZE trace_span, trace_summary, trace_attribute"))
    print("postgresql  autovacuum is off on this server: ANALYZE the trace tables, as it would")
