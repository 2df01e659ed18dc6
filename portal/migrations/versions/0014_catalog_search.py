"""PostgreSQL: the full-text search reads narrow rows (``catalog_search``), not the entities.

Ranking 24,000 matches of "api" read that many whole entity rows (about 1 KB each, the
stored document among them) for their search vector: 47 ms at 100,000 entities, against
13 ms from rows holding only the vector, the list's filter and sort columns, the id and
the ref. ``catalog_search`` holds those, one row per entity, kept by statement triggers on
``catalog_entity`` (one set-based statement per import statement, ``COPY`` included), and
the search's GIN index moves to it. SQLite keeps its FTS5 index: nothing changes there.

Revision ID: 0014_catalog_search
Revises: 0013_tag_list_columns
Create Date: 2026-12-07
"""

from alembic import op

revision = "0014_catalog_search"
down_revision = "0013_tag_list_columns"
branch_labels = None
depends_on = None

# What each row copies of its entity: the list's columns (name_key as in sort_keys) and
# the entity's generated, weighted search vector. Written out in full in each statement.
_SELECT = """SELECT e.id, e.ref, lower(coalesce(nullif(e.title, ''), e.name)), e.kind_key,
    e.spec_type, e.lifecycle, e.owner_ref, e.owner_sort, e.system_ref, e.orphan,
    e.updated_at, e.search_vector"""
_INSERT = """INSERT INTO catalog_search (id, ref, name_key, kind_key, spec_type, lifecycle,
    owner_ref, owner_sort, system_ref, orphan, updated_at, search_vector)"""

_TABLE = """CREATE TABLE catalog_search (
    id integer PRIMARY KEY,
    ref varchar(300) NOT NULL,
    name_key varchar NOT NULL,
    kind_key varchar(63) NOT NULL,
    spec_type varchar(120),
    lifecycle varchar(120),
    owner_ref varchar(300),
    owner_sort varchar,
    system_ref varchar(300),
    orphan boolean NOT NULL,
    updated_at timestamp with time zone,
    search_vector tsvector NOT NULL
)"""
_FUNCTIONS = {
    "catalog_search_insert": _INSERT + "\n" + _SELECT + "\nFROM catalog_new AS e;",
    "catalog_search_update": """UPDATE catalog_search AS s SET ref = e.ref,
    name_key = lower(coalesce(nullif(e.title, ''), e.name)), kind_key = e.kind_key,
    spec_type = e.spec_type, lifecycle = e.lifecycle, owner_ref = e.owner_ref,
    owner_sort = e.owner_sort, system_ref = e.system_ref, orphan = e.orphan,
    updated_at = e.updated_at, search_vector = e.search_vector
  FROM catalog_new AS e WHERE s.id = e.id;""",
    "catalog_search_delete": "DELETE FROM catalog_search AS s USING catalog_old AS e "
    "WHERE s.id = e.id;",
}
_TRIGGERS = {
    "catalog_search_ai": ("INSERT", "NEW TABLE AS catalog_new", "catalog_search_insert"),
    "catalog_search_au": ("UPDATE", "NEW TABLE AS catalog_new", "catalog_search_update"),
    "catalog_search_ad": ("DELETE", "OLD TABLE AS catalog_old", "catalog_search_delete"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_TABLE)
    op.execute(_INSERT + "\n" + _SELECT + "\nFROM catalog_entity AS e")
    op.execute("CREATE INDEX ix_catalog_search_vector ON catalog_search USING gin (search_vector)")
    for name, body in _FUNCTIONS.items():
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n  {body}\n  RETURN NULL;\nEND\n$$"
        )
    for name, (event, transition, function) in _TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON catalog_entity REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    op.execute("DROP INDEX ix_catalog_entity_search")
    op.execute("ANALYZE catalog_search")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE INDEX ix_catalog_entity_search ON catalog_entity USING gin (search_vector)")
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON catalog_entity")
    for name in _FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP TABLE catalog_search")
