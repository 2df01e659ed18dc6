"""Count the SQL statements an engine runs, to hold pages and summaries to a fixed number."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    """Yield the list every statement ``engine`` executes inside the block is appended to."""
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))  # (connection, cursor, statement, ...)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
