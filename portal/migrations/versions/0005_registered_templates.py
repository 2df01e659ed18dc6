"""Copier templates registered by git URL and ref (bundled ones live in templates/).

Revision ID: 0005_registered_templates
Revises: 0004_change_revision
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_registered_templates"
down_revision = "0004_change_revision"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scaffold_template",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("url", sa.String(1000), nullable=False),
        sa.Column("ref", sa.String(250), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("version", sa.String(60), nullable=False),
        sa.Column("registered_by", sa.String(300), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scaffold_template")
