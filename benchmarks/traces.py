"""Traces benchmark (issue 17): OTLP ingestion over HTTP, then a store of 1,000,000 spans.

Run ``.venv/bin/python benchmarks/traces.py [--databases sqlite,postgresql] [--fill 1000000]``
(PostgreSQL needs ``PORTAL_TEST_DATABASE_URL``; each run gets a schema of its own).

- Ingestion: a live portal (uvicorn on loopback, as ``portal serve``) receives protobuf
  exports of 512 spans (64 traces of 8) from two sender threads for ``--seconds``; spans/s
  sustained is every stored span over the wall time. Target 10,000 spans/s on 2 cores.
  Every span sent is new, and half the traces of an export continue traces of the sender's
  previous one (another service's spans arriving later), so the summaries of traces
  already stored are recomputed as often as new ones are written.
  The senders run in a process of their own (exporters are other processes: they must not
  hold the portal's GIL) but on the same cores. On a shared machine the rate follows the
  load, so the CPU the portal process and its database sessions spent per 1,000 spans is
  printed too (from /proc), with the 2-core rate it implies.
- Fill: ``--fill`` spans written straight to the store (the receiver's own write path,
  without HTTP), spread over the last day across 20 services, 2% errors; then every
  function of ``AFTER_FILL`` is called with the filled engine (the search and waterfall
  timings add themselves there).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import re
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy import Engine, text

# Run as a script (`python benchmarks/traces.py`): make the repository importable.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from portal.clock import utcnow  # noqa: E402
from portal.config import Settings  # noqa: E402
from portal.db import make_engine, migrate  # noqa: E402
from portal.integrations.trace_source import TraceQuery  # noqa: E402
from portal.traces.store import EmbeddedTraceSource, to_ns, write_spans  # noqa: E402
from portal.traces.waterfall import build_waterfall  # noqa: E402
from tests.browser_server import live_server  # noqa: E402
from tests.traces.otlp_requests import batch  # noqa: E402

TARGET_SPANS_PER_SECOND = 10_000
BATCH = 512
SENDERS = 2
SERVICES = [f"service-{index:02d}" for index in range(20)]
# Called with the filled engine and the span count (T3: search p95, waterfall timings).
AFTER_FILL: list[Callable[[Engine, int], None]] = []


@contextmanager
def database(kind: str, data_dir: Path) -> Iterator[Settings]:
    """Yield settings for a fresh SQLite file or PostgreSQL schema (dropped afterwards)."""
    base = Settings(data_dir=data_dir, catalog_paths=[], run_worker=False, secret_key="bench")
    if kind == "sqlite":
        yield base
        return
    url = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if not url:
        raise SystemExit("PostgreSQL: set PORTAL_TEST_DATABASE_URL")
    plain = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in plain else "?"
    # application_name: finds the portal's sessions for their CPU time.
    options = f"options=-csearch_path%3D{schema}&application_name={schema}"
    try:
        yield base.model_copy(update={"database_url": f"{plain}{separator}{options}"})
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Exports:
    """Exports of new spans, made from a few templates by replacing their ids.

    A repeated export would measure only the duplicate check; building each export anew
    costs the senders, who share the portal's cores, more than splicing new ids in.
    """

    def __init__(self, templates: int = 8) -> None:
        # Per template: the body, its trace and span counts, and (offset, id index) of every
        # id in it; ids are indexed trace ids first, then span ids.
        self.templates: list[tuple[bytes, int, int, list[tuple[int, int]]]] = []
        for _ in range(templates):
            body = batch(random.choice(SERVICES), BATCH)
            request = ExportTraceServiceRequest.FromString(body)
            spans = [s for r in request.resource_spans for c in r.scope_spans for s in c.spans]
            ids = list(dict.fromkeys(span.trace_id for span in spans))
            traces = len(ids)
            ids += [span.span_id for span in spans]
            places = []
            for index, old in enumerate(ids):
                # A span id also appears as the parent_span_id of its children.
                offset = body.find(old)
                while offset >= 0:
                    places.append((offset, index))
                    offset = body.find(old, offset + 1)
            self.templates.append((body, traces, len(spans), sorted(places)))
        self.fresh: list[bytes] = []  # the previous export's new traces

    def next(self) -> bytes:
        """Return an export whose first half of traces continue the previous export's."""
        body, traces, span_count, places = random.choice(self.templates)
        continued = self.fresh[: traces // 2]
        self.fresh = [os.urandom(16) for _ in range(traces - len(continued))]
        ids = continued + self.fresh + [os.urandom(8) for _ in range(span_count)]
        # Ids are fixed-size protobuf bytes: splicing others in keeps the message valid.
        parts, end = [], 0
        for offset, index in places:
            parts += [body[end:offset], ids[index]]
            end = offset + len(ids[index])
        parts.append(body[end:])
        return b"".join(parts)


def send(url: str, seconds: float) -> tuple[int, float, list[str]]:
    """Post 512-span exports to ``url`` from SENDERS threads for ``seconds`` (a child process).

    Return the spans stored, the seconds it took and the first failures.
    """
    sent = [0] * SENDERS
    failures: list[str] = []
    deadline = time.monotonic() + seconds

    def sender(worker: int) -> None:
        exports = Exports()
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                response = client.post(
                    f"{url}/v1/traces",
                    content=exports.next(),
                    headers={"Content-Type": "application/x-protobuf"},
                )
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                    return
                sent[worker] += BATCH

    started = time.perf_counter()
    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(sent), time.perf_counter() - started, failures[:3]


def _cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds of a process on this machine (0 if unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database_cpu(engine: Engine, settings: Settings) -> dict[int, float]:
    """Return the CPU seconds of each PostgreSQL session of this run (none for SQLite)."""
    if engine.dialect.name != "postgresql":
        return {}
    name = re.search(r"application_name=(\w+)", settings.database_url or "")
    with engine.connect() as connection:
        pids = connection.scalars(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": name.group(1) if name else ""},
        ).all()
    return {pid: _cpu_seconds(pid) for pid in pids}


def ingestion(settings: Settings, seconds: float) -> tuple[float, float, float]:
    """Return the spans/s a live portal stores, and its and its database's CPU ms per 1,000."""
    with (
        live_server(settings) as url,
        ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as senders,
    ):
        engine = make_engine(settings)  # only to find the portal's database sessions
        database_before = _database_cpu(engine, settings)
        portal_before = time.process_time()
        spans, elapsed, failures = senders.submit(send, url, seconds).result()
        portal = time.process_time() - portal_before
        database_after = _database_cpu(engine, settings)
        engine.dispose()
    if failures:
        raise SystemExit(f"ingestion failed: {failures[0]}")
    database = sum(cpu - database_before.get(pid, 0.0) for pid, cpu in database_after.items())
    per_thousand = 1000 / spans * 1000
    return spans / elapsed, portal * per_thousand, database * per_thousand


def load() -> str:
    """Return the 1-minute load average, for the figures of a shared machine."""
    return f"load {os.getloadavg()[0]:.2f}"


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


# --- the Traces pages' reads (search and a 500-span waterfall) on the filled store ----------

SEARCH_TARGET_MS = 100.0
WATERFALL_TARGET_MS = 150.0
REPEATS = 30


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def search_timings(engine: Engine, total: int) -> None:
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
        p95 = _p95([_timed(partial(source.search, query)) for _ in range(REPEATS)])
        verdict = "ok" if p95 < SEARCH_TARGET_MS else "ABOVE TARGET"
        print(f"  search {label:<12} p95 {p95:8.1f} ms (target {SEARCH_TARGET_MS:.0f}) {verdict}")


def waterfall_timings(engine: Engine, total: int) -> None:
    """Write one 500-span trace among the ``total``; print the p95 of reading and laying it out."""
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

    p95 = _p95([_timed(read_and_lay_out) for _ in range(REPEATS)])
    verdict = "ok" if p95 < WATERFALL_TARGET_MS else "ABOVE TARGET"
    print(
        f"  waterfall of 500 spans p95 {p95:8.1f} ms (target {WATERFALL_TARGET_MS:.0f}) {verdict}"
    )


AFTER_FILL.extend([search_timings, waterfall_timings])


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


def main() -> None:
    """Measure ingestion on each database, then fill a fresh store and run AFTER_FILL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fill", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {platform.platform()}")
    print(f"Python {platform.python_version()}; batches of {BATCH} spans, {SENDERS} senders")
    for kind in args.databases.split(","):
        if args.seconds:
            with tempfile.TemporaryDirectory() as folder, database(kind, Path(folder)) as settings:
                measure_ingestion(kind, settings, args.seconds)
        if args.fill:
            # A store of its own: the reads see the fill's spans only (the ingestion's are
            # dated in 2027, and would be the newest traces every search walks first).
            with tempfile.TemporaryDirectory() as folder, database(kind, Path(folder)) as settings:
                engine = make_engine(settings)
                migrate(engine)
                seconds = fill(engine, args.fill)
                print(
                    f"{kind:<11} fill {args.fill:,} spans     {seconds:10.1f} s "
                    f"({args.fill / seconds:,.0f} spans/s, direct store writes); {load()}"
                )
                analyse_without_autovacuum(engine)
                for measure in AFTER_FILL:
                    measure(engine, args.fill)
                engine.dispose()


def measure_ingestion(kind: str, settings: Settings, seconds: float) -> None:
    """Print the ingestion rate over HTTP and the CPU it took."""
    before = load()
    rate, portal_ms, database_ms = ingestion(settings, seconds)
    verdict = "ok" if rate >= TARGET_SPANS_PER_SECOND else "BELOW TARGET"
    print(
        f"{kind:<11} ingestion over HTTP   {rate:10,.0f} spans/s  "
        f"(target {TARGET_SPANS_PER_SECOND:,}) {verdict}; {before}, after {load()}"
    )
    # Two cores fully given to the portal and its database: the rate the CPU allows.
    capacity = 2 * 1_000_000 / (portal_ms + database_ms)
    print(
        f"{kind:<11} CPU per 1,000 spans: portal {portal_ms:.1f} ms, database sessions "
        f"{database_ms:.1f} ms: at most {capacity:,.0f} spans/s on 2 idle cores"
    )


if __name__ == "__main__":
    main()
