"""Changes can be revised after "request changes": a revision counter per change.

Revision ID: 0004_change_revision
Revises: 0003_review
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_change_revision"
down_revision = "0003_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_change") as batch:
        batch.add_column(sa.Column("revision", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("review_change") as batch:
        batch.drop_column("revision")
