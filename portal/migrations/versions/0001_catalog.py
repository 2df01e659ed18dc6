"""Catalog tables and full-text search.

Revision ID: 0001_catalog
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_catalog"
down_revision = None
branch_labels = None
depends_on = None

# PostgreSQL: a generated, weighted tsvector. Punctuation becomes spaces first so that
# "breanna.davison" or "group:default/team-a" split into words the way SQLite's tokenizer does.
_PG_VECTOR = """
ALTER TABLE catalog_entity ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
  setweight(to_tsvector('simple'::regconfig,
    regexp_replace(coalesce(name, ''), '[^[:alnum:]]+', ' ', 'g')), 'A') ||
  setweight(to_tsvector('simple'::regconfig,
    regexp_replace(coalesce(title, ''), '[^[:alnum:]]+', ' ', 'g')), 'A') ||
  setweight(to_tsvector('simple'::regconfig,
    regexp_replace(coalesce(tags_text, ''), '[^[:alnum:]]+', ' ', 'g')), 'B') ||
  setweight(to_tsvector('simple'::regconfig,
    regexp_replace(coalesce(owner_ref, ''), '[^[:alnum:]]+', ' ', 'g')), 'C') ||
  setweight(to_tsvector('simple'::regconfig,
    regexp_replace(coalesce(description, ''), '[^[:alnum:]]+', ' ', 'g')), 'D')
) STORED
"""

# SQLite: an FTS5 index over the entity table kept in sync by triggers (external content).
_SQLITE_FTS = [
    """CREATE VIRTUAL TABLE catalog_entity_fts USING fts5(
        name, title, tags_text, owner_ref, description,
        content='catalog_entity', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER catalog_entity_ai AFTER INSERT ON catalog_entity BEGIN
        INSERT INTO catalog_entity_fts(rowid, name, title, tags_text, owner_ref, description)
        VALUES (new.id, new.name, new.title, new.tags_text, new.owner_ref, new.description);
    END""",
    """CREATE TRIGGER catalog_entity_ad AFTER DELETE ON catalog_entity BEGIN
        INSERT INTO catalog_entity_fts(catalog_entity_fts, rowid, name, title, tags_text,
            owner_ref, description)
        VALUES ('delete', old.id, old.name, old.title, old.tags_text, old.owner_ref,
            old.description);
    END""",
    """CREATE TRIGGER catalog_entity_au AFTER UPDATE ON catalog_entity BEGIN
        INSERT INTO catalog_entity_fts(catalog_entity_fts, rowid, name, title, tags_text,
            owner_ref, description)
        VALUES ('delete', old.id, old.name, old.title, old.tags_text, old.owner_ref,
            old.description);
        INSERT INTO catalog_entity_fts(rowid, name, title, tags_text, owner_ref, description)
        VALUES (new.id, new.name, new.title, new.tags_text, new.owner_ref, new.description);
    END""",
]


def upgrade() -> None:
    op.create_table(
        "catalog_entity",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ref", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("kind_key", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("title", sa.String, nullable=True),
        sa.Column("description", sa.String, nullable=True),
        sa.Column("spec_type", sa.String(120), nullable=True),
        sa.Column("lifecycle", sa.String(120), nullable=True),
        sa.Column("owner_ref", sa.String(300), nullable=True),
        sa.Column("system_ref", sa.String(300), nullable=True),
        sa.Column("tags_text", sa.String, nullable=False, server_default=""),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("source_key", sa.String(2000), nullable=False),
        sa.Column("source_doc", sa.Integer, nullable=False, server_default="0"),
        sa.Column("source_line", sa.Integer, nullable=False, server_default="1"),
        sa.Column("known_kind", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("orphan", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_catalog_entity_ref", "catalog_entity", ["ref"], unique=True)
    for column in ("kind_key", "spec_type", "lifecycle", "owner_ref", "system_ref", "orphan"):
        op.create_index(f"ix_catalog_entity_{column}", "catalog_entity", [column])
    op.create_index("ix_catalog_entity_source_key", "catalog_entity", ["source_key"])

    op.create_table(
        "catalog_relation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("origin_ref", sa.String(300), nullable=False),
        sa.Column("source_ref", sa.String(300), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("target_ref", sa.String(300), nullable=False),
    )
    op.create_index("ix_catalog_relation_origin_ref", "catalog_relation", ["origin_ref"])
    op.create_index("ix_catalog_relation_target_ref", "catalog_relation", ["target_ref"])
    op.create_index("ix_catalog_relation_source_type", "catalog_relation", ["source_ref", "type"])

    op.create_table(
        "catalog_source",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(2000), nullable=False),
        sa.Column("root_key", sa.String(2000), nullable=False),
        sa.Column("is_root", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("entity_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("problem_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_read_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key", name="uq_catalog_source_key"),
    )
    op.create_index("ix_catalog_source_root_key", "catalog_source", ["root_key"])

    op.create_table(
        "catalog_problem",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_key", sa.String(2000), nullable=False),
        sa.Column("doc_index", sa.Integer, nullable=True),
        sa.Column("line", sa.Integer, nullable=True),
        sa.Column("field_path", sa.String(300), nullable=True),
        sa.Column("entity_ref", sa.String(300), nullable=True),
        sa.Column("message", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_catalog_problem_source_key", "catalog_problem", ["source_key"])

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_VECTOR)
        op.execute(
            "CREATE INDEX ix_catalog_entity_search ON catalog_entity USING gin (search_vector)"
        )
    elif dialect == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS catalog_entity_fts")
    op.drop_table("catalog_problem")
    op.drop_table("catalog_source")
    op.drop_table("catalog_relation")
    op.drop_table("catalog_entity")
