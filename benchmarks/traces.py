"""Traces benchmark (issue 17): OTLP ingestion over HTTP, then a store of 1,000,000 spans.

Run ``.venv/bin/python benchmarks/traces.py [--databases sqlite,postgresql] [--fill 1000000]
[--processes 0,2]``
(PostgreSQL needs ``PORTAL_TEST_DATABASE_URL``; each run gets a schema of its own).

- Ingestion: a live portal (uvicorn on loopback, as ``portal serve``) receives protobuf
  exports of 512 spans (64 traces of 8) from two sender threads for ``--seconds``; spans/s
  sustained is every stored span over the wall time. Target 10,000 spans/s on 2 cores.
  Measured with each ``--processes`` value in turn (PORTAL_TRACE_INGEST_PROCESSES; 0, the
  request threads, is the baseline of the default 2 worker processes).
  Every span sent is new, and half the traces of an export continue traces of the sender's
  previous one (another service's spans arriving later), so the summaries of traces
  already stored are recomputed as often as new ones are written.
  The senders run in a process of their own (exporters are other processes: they must not
  hold the portal's GIL) but on the same cores. On a shared machine the rate follows the
  load, so the CPU the portal process and its database sessions spent per 1,000 spans is
  printed too (from /proc), with the 2-core rate it implies.
- Fill: ``--fill`` spans written straight to the store (the receiver's own write path,
  without HTTP), spread over the last day across 20 services, 2% errors; then the Traces
  pages' reads are timed on it (:mod:`benchmarks.trace_reads`: the searches' p95, target
  100 ms, and a 500-span waterfall's, target 150 ms).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy import Engine, text

# Run as a script (`python benchmarks/traces.py`): make the repository importable.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.trace_reads import (  # noqa: E402
    SERVICES,
    analyse_without_autovacuum,
    fill,
    search_timings,
    waterfall_timings,
)
from portal.config import Settings  # noqa: E402
from portal.db import make_engine, migrate  # noqa: E402
from tests.browser_server import live_server  # noqa: E402
from tests.traces.otlp_requests import batch  # noqa: E402

TARGET_SPANS_PER_SECOND = 10_000
BATCH = 512
SENDERS = 2


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


def send(url: str, seconds: float) -> tuple[int, float, list[str], int]:
    """Post 512-span exports to ``url`` from SENDERS threads for ``seconds`` (a child process).

    Return the spans stored, the seconds it took, the first failures and the sender's pid.
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
    return sum(sent), time.perf_counter() - started, failures[:3], os.getpid()


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
        spans, elapsed, failures, sender = senders.submit(send, url, seconds).result()
        portal = time.process_time() - portal_before
        # The portal's trace ingestion processes (PORTAL_TRACE_INGEST_PROCESSES): every
        # child but the senders', started by the first export, so all their CPU is this run's.
        workers = [child.pid for child in multiprocessing.active_children()]
        portal += sum(_cpu_seconds(pid) for pid in workers if pid and pid != sender)
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


def main() -> None:
    """Measure ingestion on each database, then fill a fresh store and time its reads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fill", type=int, default=1_000_000)
    parser.add_argument(
        "--processes",
        default="0,2",
        help="PORTAL_TRACE_INGEST_PROCESSES values to measure ingestion with, in turn",
    )
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {platform.platform()}")
    print(f"Python {platform.python_version()}; batches of {BATCH} spans, {SENDERS} senders")
    for kind in args.databases.split(","):
        for processes in map(int, args.processes.split(",") if args.seconds else []):
            with tempfile.TemporaryDirectory() as folder, database(kind, Path(folder)) as settings:
                ingest = settings.model_copy(update={"trace_ingest_processes": processes})
                measure_ingestion(kind, ingest, args.seconds)
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
                search_timings(engine)
                waterfall_timings(engine)
                engine.dispose()


def measure_ingestion(kind: str, settings: Settings, seconds: float) -> None:
    """Print the ingestion rate over HTTP and the CPU it took."""
    before = load()
    rate, portal_ms, database_ms = ingestion(settings, seconds)
    verdict = "ok" if rate >= TARGET_SPANS_PER_SECOND else "BELOW TARGET"
    processes = settings.trace_ingest_processes
    print(
        f"{kind:<11} ingestion, {processes} processes {rate:10,.0f} spans/s  "
        f"(target {TARGET_SPANS_PER_SECOND:,}) {verdict}; {before}, after {load()}"
    )
    # Two cores fully given to the portal and its database: the rate the CPU allows.
    capacity = 2 * 1_000_000 / (portal_ms + database_ms)
    print(
        f"{kind:<11} CPU per 1,000 spans: portal (and its ingestion processes) {portal_ms:.1f} "
        f"ms, database sessions "
        f"{database_ms:.1f} ms: at most {capacity:,.0f} spans/s on 2 idle cores"
    )


if __name__ == "__main__":
    main()
