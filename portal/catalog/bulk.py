"""Writing many catalog rows at once: ``COPY`` on PostgreSQL, executemany elsewhere.

On SQLite the entities' full-text index is filled in one statement after them instead of
by the per-row trigger (see migration ``0002_bulk_fts``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table, insert, text
from sqlmodel import Session, SQLModel

from portal.catalog.models import Entity

_ENTITY_TABLE: Table = SQLModel.metadata.tables[Entity.__tablename__]
_JSON_COLUMNS = frozenset({"document"})
_ANALYZED = ("catalog_entity", "catalog_relation", "catalog_tag")  # our own table names


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Yield ``items`` in slices of ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def bulk_insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows: ``COPY`` on PostgreSQL, one executemany per chunk elsewhere."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite" and table is _ENTITY_TABLE:
        _insert_entities_sqlite(connection, rows)
        return
    if connection.dialect.name != "postgresql":
        for chunk in chunks(rows, 5000):
            connection.execute(insert(table), list(chunk))
        return
    columns = list(rows[0])
    names = ", ".join(f'"{name}"' for name in columns)  # our own column names, not input
    driver: Any = connection.connection.driver_connection  # psycopg 3
    with (
        driver.cursor() as cursor,
        cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
    ):
        for row in rows:
            copy.write_row(
                [json.dumps(row[name]) if name in _JSON_COLUMNS else row[name] for name in columns]
            )


def _insert_entities_sqlite(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert entities and full-text index them in one statement (see migration 0002).

    The first write takes SQLite's write lock, so the ids above ``before`` are ours; the
    deferral row is gone again before this transaction commits.
    """
    connection.execute(text("INSERT INTO catalog_fts_deferred (deferred) VALUES (1)"))
    before = connection.execute(text("SELECT coalesce(max(id), 0) FROM catalog_entity")).one()[0]
    for chunk in chunks(rows, 5000):
        connection.execute(insert(_ENTITY_TABLE), list(chunk))
    connection.execute(
        text(
            "INSERT INTO catalog_entity_fts"
            " (rowid, name, title, tags_text, owner_ref, description, search_facets)"
            " SELECT id, name, title, tags_text, owner_ref, description, search_facets"
            " FROM catalog_entity WHERE id > :before"
        ),
        {"before": before},
    )
    connection.execute(text("DELETE FROM catalog_fts_deferred"))


@contextmanager
def indexes_set_aside(connection: Connection, tables: Sequence[str]) -> Iterator[None]:
    """Drop the secondary indexes of ``tables`` for a bulk load, and build them again after.

    Filling an empty catalog of 100,000 entities row by row into a dozen indexes cost
    more than the rows themselves; building each index once from the loaded rows costs a
    fraction of that. Unique indexes stay (they are checks, not only lookups). On
    PostgreSQL no row may be updated in between: an index built over rows updated in its
    own transaction is unusable (``indcheckxmin``) while any older transaction is open, and
    one session left idle in a transaction kept every list and search on sequential scans
    (see ``prefill_owner_sort``). It all
    happens in the caller's transaction: on an error the indexes come back with the
    rollback, and other connections never see a table without them (SQLite's readers
    read the last commit; PostgreSQL's wait for this one's locks).
    """
    saved: list[tuple[str, str]] = []
    for table in tables:
        saved += _secondary_indexes(connection, table)
    for name, _definition in saved:
        connection.execute(text(f'DROP INDEX "{name}"'))  # names the database itself listed
    yield
    for _name, definition in saved:
        connection.execute(text(definition))


def _secondary_indexes(connection: Connection, table: str) -> list[tuple[str, str]]:
    """Return ``(name, CREATE INDEX statement)`` of the table's non-unique indexes."""
    if connection.dialect.name == "sqlite":
        rows = connection.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table"
                " AND sql IS NOT NULL"
            ),
            {"table": table},
        )
    else:
        rows = connection.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = current_schema() AND tablename = :table"
            ),
            {"table": table},
        )
    return [
        (str(name), str(definition))
        for name, definition in rows
        if not str(definition).upper().startswith("CREATE UNIQUE")
    ]


def analyze_catalog(connection: Connection) -> None:
    """Refresh the planner's statistics of the catalog tables after a large change.

    PostgreSQL would otherwise plan for a nearly empty table until autovacuum's next pass
    (a page of API results read its relations with a sequential scan: 8 ms instead of 1 ms
    on 10,000 entities). SQLite has none until asked; without them it takes ``kind_key``
    for as selective as an owner and, for components of one owner, walks all 40,000
    components in sort order instead of sorting that owner's thirty. Its sampling
    ``analysis_limit`` keeps that to milliseconds at 100,000 entities.
    """
    if connection.dialect.name == "sqlite":
        connection.execute(text("PRAGMA analysis_limit = 1000"))
        for table in _ANALYZED:
            connection.execute(text(f'ANALYZE "{table}"'))
        return
    for table in _ANALYZED:
        connection.execute(text(f'ANALYZE "{table}"'))
    # The search rows (PostgreSQL only), once migration 0014 made them (earlier ones call this).
    if connection.execute(text("SELECT to_regclass('catalog_search')")).scalar() is not None:
        connection.execute(text("ANALYZE catalog_search"))
