"""Changes to existing services: who proposed an edit, why, its evidence; API tokens.

Revision ID: 0009_edit_changes
Revises: 0008_approval_override
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_edit_changes"
down_revision = "0008_approval_override"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_change") as batch:
        batch.add_column(sa.Column("proposed_by", sa.String(300), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(5000), nullable=True))
        batch.add_column(sa.Column("evidence", sa.JSON(), nullable=True))
    op.create_table(
        "auth_service_token",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(300), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("auth_service_token")
    with op.batch_alter_table("review_change") as batch:
        for column in ("evidence", "reason", "proposed_by"):
            batch.drop_column(column)
