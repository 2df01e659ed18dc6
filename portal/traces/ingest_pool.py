"""Where the receiver's work runs: worker processes (the default) or the request's thread.

Decoding an export and storing its spans is pure Python work (about 65 µs a span), and one
process runs Python on one core at a time: in the portal's own process, ingestion and
every page would share that core. ``PORTAL_TRACE_INGEST_PROCESSES`` worker processes
(default 2) each decode and store whole exports with an engine of their own, so ingestion
uses the machine's other cores and the portal's process keeps only the HTTP.
``0`` runs it in the request's thread instead (tests, tiny machines).

The processes start with the first export, not with the portal (most portals in tests
never receive one), by ``spawn`` (a fork of a threaded server can inherit a held lock).
A worker that dies answers 503, which exporters retry, and the next export gets a new pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from portal.config import Settings
from portal.db import make_engine
from portal.traces.ingest import Export, Limits, Outcome, Sender, ingest

log = logging.getLogger(__name__)

_worker_engine: Engine | None = None  # a worker process's own engine (_start_worker)


def _start_worker(settings: Settings) -> None:
    global _worker_engine  # one engine per worker process, made once
    _worker_engine = make_engine(settings)


def _ingest_in_worker(limits: Limits, sender: Sender, export: Export) -> Outcome:
    if _worker_engine is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("trace worker started without its engine")
    return ingest(_worker_engine, limits, sender, export)


class TraceIngest:
    """Runs :func:`portal.traces.ingest.ingest` for the receiver, in processes or threads."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.processes = settings.trace_ingest_processes
        self.limits = Limits(
            settings.trace_max_body_bytes,
            settings.trace_max_spans,
            settings.trace_max_attribute_bytes,
        )
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, sender: Sender, export: Export) -> Outcome:
        """Decode and store ``export`` for ``sender``; return the answer."""
        if self.processes == 0:
            return await run_in_threadpool(ingest, self.engine, self.limits, sender, export)
        pool = self._executor()
        try:
            future = pool.submit(_ingest_in_worker, self.limits, sender, export)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            log.exception("a trace ingestion process died; starting new ones")
            self._discard(pool)
            return Outcome(503, message="the portal's trace worker stopped; send the spans again")

    def close(self) -> None:
        """Stop the worker processes, after the exports under way."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(self.settings,),
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)
