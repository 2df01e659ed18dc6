"""Search best first without scoring every match: filters in SQLite's index, name-order walks.

A search listed best first used to rank every match (bm25 on SQLite, ``ts_rank`` on
PostgreSQL): at 100,000 entities "api" matches 23,720 of them, and scoring them all took
20 to 30 ms before the first row. Results now come in tiers (see
``portal.catalog.search_tiers``), each in the list's name order, so a page is read by
walking a name index until it is full.

- SQLite: ``catalog_entity.search_facets`` (generated, not stored) holds the list's
  filters as words, ``k<hex of kind_key>``, ``t...`` type, ``l...`` lifecycle, ``o...``
  owner and ``s...`` system, and the full-text index gains it as a sixth column. A
  filtered search is then counted by the index alone instead of reading each match's row
  (a search for a tag among services: 10 ms -> 2 ms). The index also keeps prefixes of
  one to three characters, so a short prefix ("2", "ap") no longer merges every word
  that starts with it. The index is rebuilt from the entities.
- PostgreSQL: ``catalog_search`` gets ``name_vector``, the words of the name and title
  (its search vector's weight A, generated), with its own GIN index: the planner then
  knows how many names hold a word (none for a tag's) and does not walk the name index
  looking for them (50 ms for "redis"). With it, the name-order indexes the walk reads,
  with and without ``kind_key`` in front, and one over ``name_key`` in byte order
  (``COLLATE "C"``) for the names that start with the query's first word.

Revision ID: 0017_search_tiers
Revises: 0016_relation_covering_index
Create Date: 2026-12-07
"""

from alembic import op

revision = "0017_search_tiers"
down_revision = "0016_relation_covering_index"
branch_labels = None
depends_on = None

_FACETS = """ALTER TABLE catalog_entity ADD COLUMN search_facets TEXT GENERATED ALWAYS AS (
    'k' || hex(kind_key) || ' t' || hex(coalesce(spec_type, ''))
    || ' l' || hex(coalesce(lifecycle, '')) || ' o' || hex(coalesce(owner_ref, ''))
    || ' s' || hex(coalesce(system_ref, ''))) VIRTUAL"""

_FTS = """CREATE VIRTUAL TABLE catalog_entity_fts USING fts5(
    name, title, tags_text, owner_ref, description, search_facets,
    content='catalog_entity', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2', prefix='1 2 3')"""
# As 0001, 0002 and 0012 wrote them, with the sixth column; an update rewrites the row
# only when a column the index holds (or search_facets derives from) changes.
_TRIGGERS = [
    """CREATE TRIGGER catalog_entity_ai AFTER INSERT ON catalog_entity
    WHEN NOT EXISTS (SELECT 1 FROM catalog_fts_deferred) BEGIN
        INSERT INTO catalog_entity_fts(rowid, name, title, tags_text, owner_ref, description,
            search_facets)
        VALUES (new.id, new.name, new.title, new.tags_text, new.owner_ref, new.description,
            new.search_facets);
    END""",
    """CREATE TRIGGER catalog_entity_ad AFTER DELETE ON catalog_entity BEGIN
        INSERT INTO catalog_entity_fts(catalog_entity_fts, rowid, name, title, tags_text,
            owner_ref, description, search_facets)
        VALUES ('delete', old.id, old.name, old.title, old.tags_text, old.owner_ref,
            old.description, old.search_facets);
    END""",
    """CREATE TRIGGER catalog_entity_au AFTER UPDATE OF name, title, tags_text, owner_ref,
        description, kind_key, spec_type, lifecycle, system_ref ON catalog_entity BEGIN
        INSERT INTO catalog_entity_fts(catalog_entity_fts, rowid, name, title, tags_text,
            owner_ref, description, search_facets)
        VALUES ('delete', old.id, old.name, old.title, old.tags_text, old.owner_ref,
            old.description, old.search_facets);
        INSERT INTO catalog_entity_fts(rowid, name, title, tags_text, owner_ref, description,
            search_facets)
        VALUES (new.id, new.name, new.title, new.tags_text, new.owner_ref, new.description,
            new.search_facets);
    END""",
]
# The index and triggers as 0016 left them.
_OLD_FTS = """CREATE VIRTUAL TABLE catalog_entity_fts USING fts5(
    name, title, tags_text, owner_ref, description,
    content='catalog_entity', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2')"""
_OLD_TRIGGERS = [
    """CREATE TRIGGER catalog_entity_ai AFTER INSERT ON catalog_entity
    WHEN NOT EXISTS (SELECT 1 FROM catalog_fts_deferred) BEGIN
        INSERT INTO catalog_entity_fts(rowid, name, title, tags_text, owner_ref, description)
        VALUES (new.id, new.name, new.title, new.tags_text, new.owner_ref, new.description);
    END""",
    """CREATE TRIGGER catalog_entity_ad AFTER DELETE ON catalog_entity BEGIN
        INSERT INTO catalog_entity_fts(catalog_entity_fts, rowid, name, title, tags_text,
            owner_ref, description)
        VALUES ('delete', old.id, old.name, old.title, old.tags_text, old.owner_ref,
            old.description);
    END""",
    """CREATE TRIGGER catalog_entity_au AFTER UPDATE OF name, title, tags_text, owner_ref,
        description ON catalog_entity BEGIN
        INSERT INTO catalog_entity_fts(catalog_entity_fts, rowid, name, title, tags_text,
            owner_ref, description)
        VALUES ('delete', old.id, old.name, old.title, old.tags_text, old.owner_ref,
            old.description);
        INSERT INTO catalog_entity_fts(rowid, name, title, tags_text, owner_ref, description)
        VALUES (new.id, new.name, new.title, new.tags_text, new.owner_ref, new.description);
    END""",
]
_REBUILD = "INSERT INTO catalog_entity_fts(catalog_entity_fts) VALUES ('rebuild')"
_DROP_FTS = [
    "DROP TRIGGER catalog_entity_ai",
    "DROP TRIGGER catalog_entity_ad",
    "DROP TRIGGER catalog_entity_au",
    "DROP TABLE catalog_entity_fts",
]

_NAME_VECTOR = """ALTER TABLE catalog_search ADD COLUMN name_vector tsvector
    GENERATED ALWAYS AS (ts_filter(search_vector, '{a}')) STORED"""
_PG_INDEXES = {
    "ix_catalog_search_name_vector": "USING gin (name_vector)",
    "ix_catalog_search_name": "(name_key, ref)",
    "ix_catalog_search_kind_name": "(kind_key, name_key, ref)",
    "ix_catalog_search_name_bytes": '((name_key COLLATE "C"))',
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NAME_VECTOR)
        for name, columns in _PG_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON catalog_search {columns}")
        op.execute("ANALYZE catalog_search")
        return
    op.execute(_FACETS)
    for statement in [*_DROP_FTS, _FTS, *_TRIGGERS, _REBUILD]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in _PG_INDEXES:
            op.execute(f"DROP INDEX {name}")
        op.execute("ALTER TABLE catalog_search DROP COLUMN name_vector")
        return
    for statement in [*_DROP_FTS, _OLD_FTS, *_OLD_TRIGGERS, _REBUILD]:
        op.execute(statement)
    op.execute("ALTER TABLE catalog_entity DROP COLUMN search_facets")
