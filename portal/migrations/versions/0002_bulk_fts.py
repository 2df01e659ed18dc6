"""SQLite: let a bulk import fill the full-text index in one statement.

The per-row insert trigger of 0001 cost most of a 10,000-entity import. It now stands
aside while ``catalog_fts_deferred`` holds a row; the importer adds that row, inserts the
entities, indexes them with one ``INSERT ... SELECT`` and deletes the row, all in its own
transaction, so no other connection ever sees the trigger disabled.

Revision ID: 0002_bulk_fts
Revises: 0001_catalog
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002_bulk_fts"
down_revision = "0001_catalog"
branch_labels = None
depends_on = None

_DEFERRABLE_TRIGGER = """CREATE TRIGGER catalog_entity_ai AFTER INSERT ON catalog_entity
    WHEN NOT EXISTS (SELECT 1 FROM catalog_fts_deferred) BEGIN
        INSERT INTO catalog_entity_fts(rowid, name, title, tags_text, owner_ref, description)
        VALUES (new.id, new.name, new.title, new.tags_text, new.owner_ref, new.description);
    END"""

_ORIGINAL_TRIGGER = """CREATE TRIGGER catalog_entity_ai AFTER INSERT ON catalog_entity BEGIN
        INSERT INTO catalog_entity_fts(rowid, name, title, tags_text, owner_ref, description)
        VALUES (new.id, new.name, new.title, new.tags_text, new.owner_ref, new.description);
    END"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's tsvector is a generated column: nothing to defer
    op.execute("CREATE TABLE catalog_fts_deferred (deferred INTEGER NOT NULL)")
    op.execute("DROP TRIGGER catalog_entity_ai")
    op.execute(_DEFERRABLE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER catalog_entity_ai")
    op.execute(_ORIGINAL_TRIGGER)
    op.execute("DROP TABLE catalog_fts_deferred")
