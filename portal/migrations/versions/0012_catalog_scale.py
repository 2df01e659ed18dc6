"""Catalog at 100,000 entities: indexed sorts, tags and facets; skip unchanged files.

- ``catalog_source.text_hash`` is the digest of a file's text at its last clean read and
  ``catalog_entity.name_line`` the line a duplicate's problem points at without parsing the
  file again (``portal.catalog.known_files``). Both start empty: the first import after
  the upgrade reads every file as before and fills them.
- One index per list sort, and the same with ``kind_key`` in front, over exactly the
  expressions of ``portal.catalog.sort_keys``; ``owner_sort`` holds the owner's shown name.
  ``kind_key``'s own index is the front of one of them and goes.
- ``catalog_tag`` (one row per entity and tag) and ``catalog_facet`` (the filters' values
  with their counts) are filled here from the stored entities, then kept by the import.
- SQLite: the full-text index is rewritten only when an indexed column changes, not
  when an entity is orphaned or its owner's name changes.

Revision ID: 0012_catalog_scale
Revises: 0011_traces
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_catalog_scale"
down_revision = "0011_traces"
branch_labels = None
depends_on = None

_SHOWN = "lower(coalesce(nullif(title, ''), name))"
_NULLABLE = ("owner_sort", "spec_type", "lifecycle")

_FTS_COLUMNS = "name, title, tags_text, owner_ref, description"
_UPDATE_TRIGGER = """CREATE TRIGGER catalog_entity_au AFTER UPDATE {columns}ON catalog_entity BEGIN
        INSERT INTO catalog_entity_fts(catalog_entity_fts, rowid, name, title, tags_text,
            owner_ref, description)
        VALUES ('delete', old.id, old.name, old.title, old.tags_text, old.owner_ref,
            old.description);
        INSERT INTO catalog_entity_fts(rowid, name, title, tags_text, owner_ref, description)
        VALUES (new.id, new.name, new.title, new.tags_text, new.owner_ref, new.description);
    END"""


def _sort_indexes(dialect: str) -> dict[str, str]:
    """Return index name -> its column list, for both the plain and the kind-first form."""
    keys = {"name": "", "updated": "updated_at DESC, "}
    for column in _NULLABLE:
        # SQLite orders NULL first; sort_keys orders by "key IS NULL" first there.
        keys[column] = f"{column} IS NULL, {column}, " if dialect == "sqlite" else f"{column}, "
    indexes: dict[str, str] = {}
    for label, prefix in keys.items():
        indexes[f"ix_catalog_entity_sort_{label}"] = f"{prefix}{_SHOWN}, ref"
        indexes[f"ix_catalog_entity_kind_sort_{label}"] = f"kind_key, {prefix}{_SHOWN}, ref"
    return indexes


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.add_column("catalog_source", sa.Column("text_hash", sa.String(64), nullable=True))
    op.add_column("catalog_entity", sa.Column("name_line", sa.Integer, nullable=True))
    op.add_column("catalog_entity", sa.Column("owner_sort", sa.String, nullable=True))
    op.create_table(
        "catalog_tag",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entity_ref", sa.String(300), nullable=False),
        sa.Column("tag", sa.String(63), nullable=False),
    )
    op.create_index("ix_catalog_tag_entity_ref", "catalog_tag", ["entity_ref"])
    op.create_index("ix_catalog_tag_tag", "catalog_tag", ["tag", "entity_ref"])
    op.create_table(
        "catalog_facet",
        sa.Column("facet", sa.String(20), primary_key=True),
        sa.Column("value", sa.String, primary_key=True),
        sa.Column("entity_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("owner_kind", sa.String(63), nullable=True),
        sa.Column("owner_title", sa.String, nullable=True),
        sa.Column("owner_name", sa.String(63), nullable=True),
    )
    if dialect == "sqlite":
        op.execute("DROP TRIGGER catalog_entity_au")
        op.execute(_UPDATE_TRIGGER.format(columns=f"OF {_FTS_COLUMNS} "))
    op.drop_index("ix_catalog_entity_kind_key", table_name="catalog_entity")
    for name, columns in _sort_indexes(dialect).items():
        op.execute(f"CREATE INDEX {name} ON catalog_entity ({columns})")
    fill(bind)


def fill(bind: sa.Connection) -> None:
    """Derive the new columns and tables from the entities already stored."""
    # Imported here: the app's own code computes them exactly as the import will.
    from portal.catalog.bulk import analyze_catalog
    from portal.catalog.facets import rebuild_facets
    from portal.catalog.sort_keys import refresh_owner_sort
    from portal.catalog.tags import tag_rows

    refresh_owner_sort(bind)
    rows = bind.execute(sa.text("SELECT ref, tags_text FROM catalog_entity WHERE tags_text != ''"))
    tags = [row for ref, tags_text in rows for row in tag_rows(ref, tags_text)]
    if tags:
        bind.execute(
            sa.text("INSERT INTO catalog_tag (entity_ref, tag) VALUES (:entity_ref, :tag)"), tags
        )
    rebuild_facets(bind)
    analyze_catalog(bind)  # the planner's choice between the new indexes needs them


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name in _sort_indexes(dialect):
        op.execute(f"DROP INDEX {name}")
    op.create_index("ix_catalog_entity_kind_key", "catalog_entity", ["kind_key"])
    if dialect == "sqlite":
        op.execute("DROP TRIGGER catalog_entity_au")
        op.execute(_UPDATE_TRIGGER.format(columns=""))
    op.drop_table("catalog_facet")
    op.drop_table("catalog_tag")
    # Plain DROP COLUMN (SQLite 3.35 and later): a batch copy of catalog_entity would drop
    # the full-text triggers with the old table.
    for table, column in (
        ("catalog_entity", "owner_sort"),
        ("catalog_entity", "name_line"),
        ("catalog_source", "text_hash"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
