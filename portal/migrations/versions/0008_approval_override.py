"""A change records an approval over failed checks: the admin's reason and the checks.

Revision ID: 0008_approval_override
Revises: 0007_check_environment
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_approval_override"
down_revision = "0007_check_environment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_change") as batch:
        batch.add_column(sa.Column("override_reason", sa.String(2000), nullable=True))
        batch.add_column(sa.Column("override_checks", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_change") as batch:
        batch.drop_column("override_checks")
        batch.drop_column("override_reason")
