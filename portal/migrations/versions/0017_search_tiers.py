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
  (a search for a tag among services: 10 ms -> 2 ms). The index also keeps each word's
  first character, so a one-character prefix (the "2" of "tier-2") no longer merges
  every word that starts with it (4 ms -> 1.4 ms at 100,000 entities, for 0.1 s more
  of import; prefixes of two and three characters cost 0.7 s more for 1 ms). The index
  is rebuilt from the entities.
- PostgreSQL: ``catalog_search`` gets ``name_vector``, the words of the name and title
  (the entity vector's weight A), with its own GIN index: the planner then knows how
  many names hold a word (none for a tag's) and does not walk the name index looking for
  them (50 ms for "redis"). With it, the name-order indexes the walk reads, with and
  without ``kind_key`` in front, and one over ``name_key`` in byte order (``COLLATE
  "C"``) for the names that start with the query's first word. Both vectors are kept
  without positions or weights (``strip``), which nothing scores any more: counting the
  matches reads every matching row, and narrower rows are fewer pages (the 23,720 of
  "api": 10 ms -> 8 ms).

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
    tokenize='unicode61 remove_diacritics 2', prefix='1')"""
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

# The trigger functions of 0014, rewritten to copy both vectors stripped.
_PG_SELECT = """SELECT e.id, e.ref, lower(coalesce(nullif(e.title, ''), e.name)), e.kind_key,
    e.spec_type, e.lifecycle, e.owner_ref, e.owner_sort, e.system_ref, e.orphan,
    e.updated_at, {vectors}
FROM catalog_new AS e;"""
_PG_INSERT = """INSERT INTO catalog_search (id, ref, name_key, kind_key, spec_type, lifecycle,
    owner_ref, owner_sort, system_ref, orphan, updated_at, {columns})
"""
_PG_UPDATE = """UPDATE catalog_search AS s SET ref = e.ref,
    name_key = lower(coalesce(nullif(e.title, ''), e.name)), kind_key = e.kind_key,
    spec_type = e.spec_type, lifecycle = e.lifecycle, owner_ref = e.owner_ref,
    owner_sort = e.owner_sort, system_ref = e.system_ref, orphan = e.orphan,
    updated_at = e.updated_at, {assignments}
  FROM catalog_new AS e WHERE s.id = e.id;"""
_NAME_WORDS = "strip(ts_filter(e.search_vector, '{a}'))"  # weight A: the name and title
_FUNCTIONS = {
    "catalog_search_insert": _PG_INSERT.format(columns="search_vector, name_vector")
    + _PG_SELECT.format(vectors="strip(e.search_vector), " + _NAME_WORDS),
    "catalog_search_update": _PG_UPDATE.format(
        assignments="search_vector = strip(e.search_vector),\n    name_vector = " + _NAME_WORDS
    ),
}
_OLD_FUNCTIONS = {
    "catalog_search_insert": _PG_INSERT.format(columns="search_vector")
    + _PG_SELECT.format(vectors="e.search_vector"),
    "catalog_search_update": _PG_UPDATE.format(assignments="search_vector = e.search_vector"),
}


def _replace_functions(functions: dict[str, str]) -> None:
    for name, body in functions.items():
        op.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n  {body}\n  RETURN NULL;\nEND\n$$"
        )


_PG_INDEXES = {
    "ix_catalog_search_name_vector": "USING gin (name_vector)",
    "ix_catalog_search_name": "(name_key, ref)",
    "ix_catalog_search_kind_name": "(kind_key, name_key, ref)",
    "ix_catalog_search_name_bytes": '((name_key COLLATE "C"))',
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Rewrites of the table, not UPDATEs: an UPDATE of every row would leave it twice
        # its size, and counting reads its pages. Generated once, then kept by the triggers.
        op.execute(
            "ALTER TABLE catalog_search ADD COLUMN name_vector tsvector NOT NULL"
            " GENERATED ALWAYS AS (strip(ts_filter(search_vector, '{a}'))) STORED"
        )
        op.execute("ALTER TABLE catalog_search ALTER COLUMN name_vector DROP EXPRESSION")
        op.execute(
            "ALTER TABLE catalog_search ALTER COLUMN search_vector TYPE tsvector"
            " USING strip(search_vector)"
        )
        _replace_functions(_FUNCTIONS)
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
        _replace_functions(_OLD_FUNCTIONS)
        op.execute("ALTER TABLE catalog_search DROP COLUMN name_vector")
        op.execute(
            "UPDATE catalog_search AS s SET search_vector = e.search_vector"
            " FROM catalog_entity AS e WHERE s.id = e.id"
        )
        return
    for statement in [*_DROP_FTS, _OLD_FTS, *_OLD_TRIGGERS, _REBUILD]:
        op.execute(statement)
    op.execute("ALTER TABLE catalog_entity DROP COLUMN search_facets")
