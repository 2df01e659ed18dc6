"""Template update batches: one request to update several services of a template.

Revision ID: 0015_fleet_update_batch
Revises: 0014_catalog_search
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_fleet_update_batch"
down_revision = "0014_catalog_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_update_batch",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("template", sa.String(120), nullable=False),
        sa.Column("to_ref", sa.String(250), nullable=False),
        sa.Column("requested_by", sa.String(300), nullable=False),
        sa.Column("answers", sa.JSON, nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Column("skipped", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_fleet_update_batch_template", "fleet_update_batch", ["template"])


def downgrade() -> None:
    op.drop_index("ix_fleet_update_batch_template", "fleet_update_batch")
    op.drop_table("fleet_update_batch")
