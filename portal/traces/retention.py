"""Pruning the embedded trace store in the background: traces older than the retention go.

One daemon thread per app, started and stopped with it (the app's lifespan). It prunes at
start, then every ``interval``; a failed pass (the database away) is logged and retried at
the next one, never the end of the thread.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from portal.clock import utcnow
from portal.traces.store import prune

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = timedelta(minutes=10)


class TraceRetention:
    """Deletes the traces that started more than ``retention`` ago, every ``interval``."""

    def __init__(
        self, engine: Engine, retention: timedelta, interval: timedelta = DEFAULT_INTERVAL
    ) -> None:
        self.engine = engine
        self.retention = retention
        # A short retention (tests, demos) is pruned more often than every ten minutes.
        self.interval = min(interval, retention / 10)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def prune_once(self) -> int:
        """Prune now; return how many traces were deleted."""
        return prune(self.engine, utcnow() - self.retention)

    def start(self) -> None:
        """Start the pruning thread (once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="trace-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for a pass under way to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:  # one pass at least, even when stopped at once
            try:
                deleted = self.prune_once()
            except SQLAlchemyError:
                log.exception("pruning old traces failed; retrying in %s", self.interval)
            else:
                if deleted:
                    log.info("pruned %d traces older than %s", deleted, self.retention)
            if self._stop.wait(self.interval.total_seconds()):
                return
