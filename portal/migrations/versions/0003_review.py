"""Review flow: changes, check runs and the audit log.

Revision ID: 0003_review
Revises: 0002_bulk_fts
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_review"
down_revision = "0002_bulk_fts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_change",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("title", sa.String, nullable=False),
        sa.Column("template", sa.String(120), nullable=False),
        sa.Column("template_version", sa.String(60), nullable=False),
        sa.Column("service", sa.String(63), nullable=False),
        sa.Column("owner_ref", sa.String(300), nullable=False),
        sa.Column("system_ref", sa.String(300), nullable=True),
        sa.Column("requester_ref", sa.String(300), nullable=False),
        sa.Column("answers", sa.JSON, nullable=False),
        sa.Column("branch", sa.String(200), nullable=False),
        sa.Column("commit_sha", sa.String(64), nullable=True),
        sa.Column("merge_sha", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("error", sa.String, nullable=True),
        sa.Column("claimed_by", sa.String(120), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_review_change_service", "review_change", ["service"])
    op.create_index("ix_review_change_status", "review_change", ["status"])
    op.create_table(
        "review_check",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("change_id", sa.String(32), sa.ForeignKey("review_change.id"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", sa.String, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_review_check_change_id", "review_check", ["change_id"])
    op.create_table(
        "review_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("change_id", sa.String(32), sa.ForeignKey("review_change.id"), nullable=False),
        sa.Column("actor_ref", sa.String(300), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("detail", sa.String, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_review_audit_change_id", "review_audit", ["change_id"])


def downgrade() -> None:
    op.drop_table("review_audit")
    op.drop_table("review_check")
    op.drop_table("review_change")
