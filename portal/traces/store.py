"""The embedded trace store's writes: bulk inserts of a request's spans, and pruning.

What the pages read of it is :mod:`portal.traces.source`.

One request is one transaction: its spans, their traces' summaries and attribute pairs are
stored together or not at all. A span sent twice (an exporter's retry) is kept once.
A trace's summary is written with its first spans and updated by each later request that
adds spans to it, from the spans that request added, under a row lock on PostgreSQL
(SQLite serialises writers), so two requests carrying spans of one trace never lose each
other's counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from portal.traces.models import to_ns, trace_attribute, trace_span, trace_summary

_CHUNK = 500  # ids per IN (...): far below every database's bound-parameter limit
PRUNE_BATCH = 1000  # traces per pruning transaction: ingestion never waits long


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def write_spans(
    engine: Engine, spans: Sequence[dict[str, Any]], attributes: Iterable[tuple[str, str, str]]
) -> None:
    """Store span rows (:func:`portal.traces.otlp.decode`) in one transaction."""
    if not spans:
        return
    unique = list({(row["trace_id"], row["span_id"]): row for row in spans}.values())
    pairs = [{"trace_id": t, "key": k, "value": v} for t, k, v in sorted(set(attributes))]
    with engine.begin() as connection:
        stored = _add_summaries(connection, _summaries(unique))
        added = _insert_spans(connection, unique, stored)
        _insert_ignoring_duplicates(connection, trace_attribute, pairs)
        if added:
            _update_summaries(connection, stored, _summaries(added))


# Writes are one statement per table and batch, not one per row; and neither SQLAlchemy's
# per-row parameter building nor its JSON column processing runs per span: both cost more
# than the databases' own work (issue 17: 10,000 spans/s). PostgreSQL gets a batch as one
# JSON document, encoded by one json.dumps and unpacked by json_populate_recordset
# (psycopg's executemany sends a statement per row). SQLite's executemany runs in C, on
# SQL compiled once from the tables, with the JSON columns encoded here.
_SQLITE = sqlite.dialect(paramstyle="named")


def _postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def _from_json(table: sa.Table) -> Any:
    """Return ``json_populate_recordset(NULL::table, :rows)``: a batch of rows as one value."""
    rows = sa.cast(sa.bindparam("rows", type_=sa.Text), postgresql.JSON)
    record: Any = sa.literal_column(f"NULL::{table.name}")  # the table's row type: the fields
    function = sa.func.json_populate_recordset(record, rows)
    return function.table_valued(*(column.name for column in table.c)).alias("v")


@cache
def _postgres_insert(table: sa.Table, returning: bool = False) -> Any:
    rows = _from_json(table)
    names = [column.name for column in table.c]
    select = sa.select(*(rows.c[name] for name in names))
    insert = postgresql.insert(table).from_select(names, select).on_conflict_do_nothing()
    return insert.returning(*table.primary_key.columns) if returning else insert


@cache
def _sqlite_insert(table: sa.Table) -> str:
    return str(sqlite.insert(table).on_conflict_do_nothing().compile(dialect=_SQLITE))


def _insert_ignoring_duplicates(
    connection: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT ``rows`` (a dict per row) into ``table``, skipping primary keys stored already."""
    if not rows:
        return
    if _postgres(connection):
        connection.execute(_postgres_insert(table), {"rows": json.dumps(rows)})
        return
    if table is trace_span:
        rows = _with_json_text(rows)
    connection.exec_driver_sql(_sqlite_insert(table), rows)


def _with_json_text(spans: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return copies of span rows with their JSON columns as JSON text (SQLite's storage)."""
    dumps = json.dumps
    resources: dict[int, str] = {}
    rows = []
    for span in spans:
        row = dict(span)
        # The spans of one resource share its dict (otlp.decode): encode it once. An id is
        # not reused while ``spans`` holds every value.
        resource = resources.get(id(span["resource"]))
        if resource is None:
            resource = resources[id(span["resource"])] = dumps(span["resource"])
        row["resource"] = resource
        # Skipping the encoder for empty containers: most spans have no events.
        row["attributes"] = dumps(span["attributes"]) if span["attributes"] else "{}"
        row["events"] = dumps(span["events"]) if span["events"] else "[]"
        rows.append(row)
    return rows


def _add_summaries(
    connection: Connection, summaries: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Store the summaries of traces new to the store; lock and return the others' rows.

    A new trace's summary is the batch's own: a summary row exists exactly while spans of
    its trace do (:func:`prune` deletes it first). The summary of a trace with stored spans
    is locked until the commit (two requests with spans of one trace take turns) and
    updated by :func:`_update_summaries`. Sorted ids: two requests insert and lock their
    common traces in one order, so never deadlock.
    """
    stored: dict[str, dict[str, Any]] = {}
    while summaries:
        if _postgres(connection):
            # An insert meeting another request's uncommitted row of a trace waits for it.
            insert = _postgres_insert(trace_summary, returning=True)
            added = set(connection.scalars(insert, {"rows": json.dumps(summaries)}))
        else:
            # insertmanyvalues: one statement with RETURNING. SQLite has one writer at a time.
            insert = sqlite.insert(trace_summary).on_conflict_do_nothing()
            added = set(connection.scalars(insert.returning(trace_summary.c.trace_id), summaries))
        others = [row for row in summaries if row["trace_id"] not in added]
        for ids in _chunks([row["trace_id"] for row in others]):
            select = sa.select(trace_summary).where(trace_summary.c.trace_id.in_(ids))
            if _postgres(connection):
                # Waits for a request holding the row, then reads what it committed.
                select = select.order_by(trace_summary.c.trace_id).with_for_update()
            stored.update(
                (row["trace_id"], dict(row)) for row in connection.execute(select).mappings()
            )
        # A trace pruned while this request waited for its row is new again.
        summaries = [row for row in others if row["trace_id"] not in stored]
    return stored


def _insert_spans(
    connection: Connection, spans: list[dict[str, Any]], stored: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert the spans (skipping any stored already); return those added to stored traces."""
    if not stored:
        _insert_ignoring_duplicates(connection, trace_span, spans)
        return []
    if _postgres(connection):
        insert = _postgres_insert(trace_span, returning=True)
        new = set(map(tuple, connection.execute(insert, {"rows": json.dumps(spans)})))
    else:
        # Which spans are stored already, before the insert: SQLite has one writer at a time.
        span = trace_span.c
        stored_spans: set[tuple[str, str]] = set()
        for ids in _chunks(list(stored)):
            select = sa.select(span.trace_id, span.span_id).where(span.trace_id.in_(ids))
            stored_spans.update(map(tuple, connection.execute(select)))
        _insert_ignoring_duplicates(connection, trace_span, spans)
        new = {
            key for row in spans if (key := (row["trace_id"], row["span_id"])) not in stored_spans
        }
    return [
        row
        for row in spans
        if row["trace_id"] in stored and (row["trace_id"], row["span_id"]) in new
    ]


def _summaries(spans: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the summaries of the traces of ``spans``, sorted by trace id."""
    found: dict[str, dict[str, Any]] = {}
    services: dict[str, set[str]] = {}
    for span in spans:
        trace_id, start, end = span["trace_id"], span["start_ns"], span["end_ns"]
        summary = found.get(trace_id)
        if summary is None:
            summary = found[trace_id] = _summary(trace_id, start, end)
            services[trace_id] = set()
        summary["start_ns"] = min(summary["start_ns"], start)
        summary["end_ns"] = max(summary["end_ns"], end)
        summary["span_count"] += 1
        summary["error"] = summary["error"] or span["status"] == "ERROR"
        services[trace_id].add(span["service"])
        if span["parent_span_id"] is None:
            _take_root(summary, start, span["service"], span["name"])
    for trace_id, summary in found.items():
        summary["duration_ns"] = summary["end_ns"] - summary["start_ns"]
        summary["services"] = "|" + "|".join(sorted(services[trace_id])) + "|"
    return [found[trace_id] for trace_id in sorted(found)]


def _summary(trace_id: str, start: int, end: int) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "root_service": None,
        "root_operation": None,
        "root_start_ns": None,
        "start_ns": start,
        "end_ns": end,
        "duration_ns": end - start,
        "span_count": 0,
        "error": False,
        "services": "||",
    }


def _take_root(summary: dict[str, Any], start: int, service: str, name: str) -> None:
    """Make the span the trace's root if it starts before the root so far.

    The root is the earliest span without a parent: a trace may hold several parentless
    spans until its real root arrives; the earliest is the best guess.
    """
    if summary["root_start_ns"] is None or start < summary["root_start_ns"]:
        summary.update(root_service=service, root_operation=name, root_start_ns=start)


def _update_summaries(
    connection: Connection, stored: dict[str, dict[str, Any]], added: list[dict[str, Any]]
) -> None:
    """Fold the summaries of spans ``added`` to stored traces into those traces' summaries."""
    merged = []
    for new in added:
        summary = dict(stored[new["trace_id"]])
        if new["root_start_ns"] is not None:
            _take_root(summary, new["root_start_ns"], new["root_service"], new["root_operation"])
        summary["start_ns"] = min(summary["start_ns"], new["start_ns"])
        summary["end_ns"] = max(summary["end_ns"], new["end_ns"])
        summary["duration_ns"] = summary["end_ns"] - summary["start_ns"]
        summary["span_count"] += new["span_count"]
        summary["error"] = bool(summary["error"]) or new["error"]
        services = {*summary["services"].split("|"), *new["services"].split("|")} - {""}
        summary["services"] = "|" + "|".join(sorted(services)) + "|"
        merged.append(summary)
    if _postgres(connection):
        connection.execute(_postgres_update(), {"rows": json.dumps(merged)})
    else:
        rows = [{**summary, "key": summary["trace_id"]} for summary in merged]
        connection.exec_driver_sql(_sqlite_update(), rows)


@cache
def _postgres_update() -> Any:
    rows = _from_json(trace_summary)
    values = {column: rows.c[column.name] for column in trace_summary.c}
    del values[trace_summary.c.trace_id]
    return trace_summary.update().values(values).where(trace_summary.c.trace_id == rows.c.trace_id)


@cache
def _sqlite_update() -> str:
    values: dict[str, Any] = {column.name: sa.bindparam(column.name) for column in trace_summary.c}
    del values["trace_id"]
    # The key's parameter needs a name of its own: "trace_id" would be the SET clause's.
    key = trace_summary.c.trace_id == sa.bindparam("key")
    return str(trace_summary.update().where(key).values(values).compile(dialect=_SQLITE))


def prune(engine: Engine, before: datetime) -> int:
    """Delete every trace that started before ``before``; return how many were deleted."""
    cutoff = to_ns(before)
    deleted = 0
    while True:
        with engine.begin() as connection:
            ids = list(
                connection.scalars(
                    sa.select(trace_summary.c.trace_id)
                    .where(trace_summary.c.start_ns < cutoff)
                    .limit(PRUNE_BATCH)
                )
            )
            if not ids:
                return deleted
            # The summaries first: deleting one waits for a request adding spans to its
            # trace (it holds the row), whose spans the next statements then see; so a
            # summary exists exactly while spans of its trace do (_add_summaries).
            for table in (trace_summary, trace_span, trace_attribute):
                connection.execute(table.delete().where(table.c.trace_id.in_(ids)))
            deleted += len(ids)
