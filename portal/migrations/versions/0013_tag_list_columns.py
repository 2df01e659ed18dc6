"""Tag rows carry their entity's list columns: a tag-filtered list reads them alone.

``catalog_tag`` gains a copy of the entity's filter and sort columns (``kind_key``,
``spec_type``, ``lifecycle``, ``owner_ref``, ``owner_sort``, ``system_ref``, ``orphan``,
``updated_at``) and ``name_key``, its shown name lower-cased, all kept by the import
(``portal.catalog.tags``). Filled here from the stored entities.

Revision ID: 0013_tag_list_columns
Revises: 0012_catalog_scale
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_tag_list_columns"
down_revision = "0012_catalog_scale"
branch_labels = None
depends_on = None

_COLUMNS = (
    sa.Column("kind_key", sa.String(63), nullable=False, server_default=""),
    sa.Column("name_key", sa.String, nullable=False, server_default=""),
    sa.Column("spec_type", sa.String(120), nullable=True),
    sa.Column("lifecycle", sa.String(120), nullable=True),
    sa.Column("owner_ref", sa.String(300), nullable=True),
    sa.Column("owner_sort", sa.String, nullable=True),
    sa.Column("system_ref", sa.String(300), nullable=True),
    sa.Column("orphan", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", sa.DateTime, nullable=True),
)


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("catalog_tag", column)
    fill(op.get_bind())


def fill(bind: sa.Connection) -> None:
    """Copy the list columns of the stored entities into their tag rows."""
    # Imported here: the app's own code copies them exactly as the import will.
    from portal.catalog.bulk import analyze_catalog
    from portal.catalog.tags import sync_tag_columns

    sync_tag_columns(bind)
    analyze_catalog(bind)


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35 and later), as in 0012.
    for column in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE catalog_tag DROP COLUMN {column.name}")
