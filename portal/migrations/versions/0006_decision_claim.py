"""Decisions on a change are claimed before git is touched: who is deciding, since when.

Revision ID: 0006_decision_claim
Revises: 0005_registered_templates
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_decision_claim"
down_revision = "0005_registered_templates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_change") as batch:
        batch.add_column(sa.Column("decision", sa.String(20), nullable=True))
        batch.add_column(sa.Column("decision_token", sa.String(32), nullable=True))
        batch.add_column(sa.Column("decision_by", sa.String(300), nullable=True))
        batch.add_column(sa.Column("decision_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_change") as batch:
        for column in ("decision_at", "decision_by", "decision_token", "decision"):
            batch.drop_column(column)
