"""The embedded trace store: spans, one summary per trace, and its attribute pairs.

Revision ID: 0011_traces
Revises: 0010_review_comments
Create Date: 2026-12-15
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_traces"
down_revision = "0010_review_comments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_span",
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("parent_span_id", sa.String(16), nullable=True),
        sa.Column("service", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
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
    op.create_table(
        "trace_summary",
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("root_service", sa.String(256), nullable=True),
        sa.Column("root_operation", sa.String(256), nullable=True),
        sa.Column("root_start_ns", sa.BigInteger, nullable=True),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("end_ns", sa.BigInteger, nullable=False),
        sa.Column("duration_ns", sa.BigInteger, nullable=False),
        sa.Column("span_count", sa.Integer, nullable=False),
        sa.Column("error", sa.Boolean, nullable=False),
        sa.Column("services", sa.Text, nullable=False),
    )
    op.create_index("ix_trace_summary_start_ns", "trace_summary", ["start_ns"])
    op.create_index("ix_trace_summary_service_start", "trace_summary", ["root_service", "start_ns"])
    op.create_index("ix_trace_summary_duration_ns", "trace_summary", ["duration_ns"])
    op.create_table(
        "trace_attribute",
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("value", sa.String(256), primary_key=True),
    )
    op.create_index("ix_trace_attribute_key_value", "trace_attribute", ["key", "value"])


def downgrade() -> None:
    op.drop_table("trace_attribute")
    op.drop_table("trace_summary")
    op.drop_table("trace_span")
