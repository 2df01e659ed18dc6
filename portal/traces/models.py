"""The embedded trace store's tables (SQLAlchemy core: spans arrive in bulk).

``trace_span`` holds every span; ``trace_summary`` one row per trace, written with its
first spans and updated by each request that adds spans to it (a trace's spans may arrive
in several requests), so searches never aggregate spans; ``trace_attribute`` the distinct
``key=value`` pairs of a trace's spans and resources, for the attribute search. Times are
Unix nanoseconds (bigint): :func:`to_ns` and :func:`from_ns` convert them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import SQLModel

# Values longer than this are not indexed for the attribute search (a btree entry is
# bounded; nobody searches for a whole SQL statement).
MAX_INDEXED_VALUE = 256
# Service and span names are indexed too; longer ones are cut (OTel names are short).
MAX_NAME = 256

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
metadata = SQLModel.metadata


def to_ns(moment: datetime) -> int:
    """Return an aware datetime as Unix nanoseconds."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def from_ns(ns: int) -> datetime:
    """Return Unix nanoseconds as an aware UTC datetime (microsecond precision)."""
    return EPOCH + timedelta(microseconds=ns // 1000)


trace_span = sa.Table(
    "trace_span",
    metadata,
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("span_id", sa.String(16), primary_key=True),
    sa.Column("parent_span_id", sa.String(16), nullable=True),
    sa.Column("service", sa.String(MAX_NAME), nullable=False),
    sa.Column("name", sa.String(MAX_NAME), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("start_ns", sa.BigInteger, nullable=False),
    sa.Column("end_ns", sa.BigInteger, nullable=False),
    sa.Column("duration_ns", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("status_message", sa.Text, nullable=False),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("resource", sa.JSON, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
)

trace_summary = sa.Table(
    "trace_summary",
    metadata,
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("root_service", sa.String(MAX_NAME), nullable=True),
    sa.Column("root_operation", sa.String(MAX_NAME), nullable=True),
    # The root span's start: a later request's parentless span may start earlier (the real
    # root); comparing needs no reread of the trace's spans.
    sa.Column("root_start_ns", sa.BigInteger, nullable=True),
    sa.Column("start_ns", sa.BigInteger, nullable=False),
    sa.Column("end_ns", sa.BigInteger, nullable=False),
    sa.Column("duration_ns", sa.BigInteger, nullable=False),
    sa.Column("span_count", sa.Integer, nullable=False),
    sa.Column("error", sa.Boolean, nullable=False),
    # "|a|b|": every service with a span in the trace, delimited so one matches exactly.
    sa.Column("services", sa.Text, nullable=False),
    sa.Index("ix_trace_summary_start_ns", "start_ns"),
    sa.Index("ix_trace_summary_service_start", "root_service", "start_ns"),
    sa.Index("ix_trace_summary_duration_ns", "duration_ns"),
)

trace_attribute = sa.Table(
    "trace_attribute",
    metadata,
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(MAX_NAME), primary_key=True),
    sa.Column("value", sa.String(MAX_INDEXED_VALUE), primary_key=True),
    sa.Index("ix_trace_attribute_key_value", "key", "value"),
)
