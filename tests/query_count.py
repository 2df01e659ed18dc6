"""Count the SQL statements an engine runs, to hold pages and summaries to a fixed number."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event

# The app's own background threads (trace pruning, the SLO and cost caches) query the same
# engine on their own schedule; a page's count must not depend on whether one ran meanwhile.
BACKGROUND_THREADS = frozenset({"trace-retention", "slo-cache", "cost-refresh"})


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    """Yield the list every statement ``engine`` executes inside the block is appended to.

    Statements of the app's background threads (``BACKGROUND_THREADS``) are not counted.
    """
    statements: list[str] = []

    def record(*args: object) -> None:
        if threading.current_thread().name not in BACKGROUND_THREADS:
            statements.append(str(args[2]))  # (connection, cursor, statement, ...)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
