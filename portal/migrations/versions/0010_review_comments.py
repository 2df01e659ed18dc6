"""Inline review comments: one line of one file of a change, at one revision, resolvable.

Revision ID: 0010_review_comments
Revises: 0009_edit_changes
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_review_comments"
down_revision = "0009_edit_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_comment",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("change_id", sa.String(32), sa.ForeignKey("review_change.id"), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("commit_sha", sa.String(64), nullable=False),
        sa.Column("path", sa.String(4096), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("side", sa.String(3), nullable=False),
        sa.Column("body", sa.String(4000), nullable=False),
        sa.Column("line_text", sa.String, nullable=False),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("author_ref", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_by", sa.String(300), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_review_comment_change_id", "review_comment", ["change_id"])


def downgrade() -> None:
    op.drop_table("review_comment")
