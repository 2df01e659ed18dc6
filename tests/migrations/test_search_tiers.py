"""Migration 0017: the search's filter words (SQLite) and name indexes (PostgreSQL).

Runs on SQLite and, with PORTAL_TEST_DATABASE_URL, on PostgreSQL (the ``settings`` fixture).
The catalog is imported at the head, taken down to 0016 and up again: the full-text index
is rebuilt each way from the entities, and the search finds the same entities after.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session

from portal.catalog.search import EntityQuery, list_entities
from portal.config import Settings
from portal.db import migrate
from tests.catalog.test_search_tiers import PAYMENTS, component, load
from tests.migrations.support import downgrade

BEFORE = "0017_search_tiers"  # the old_engine fixture starts at the head
DOWN = "0016_relation_covering_index"


def found(engine: Engine, **query: object) -> list[str]:
    with Session(engine) as session:
        page = list_entities(session, EntityQuery(limit=50, **query))  # type: ignore[arg-type]
        return [entity.ref for entity in page.items]


def columns(engine: Engine, table: str) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(sa.text(f"SELECT name FROM pragma_table_xinfo('{table}')"))
        else:
            rows = connection.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND table_name = :table"
                ),
                {"table": table},
            )
        return {str(name) for (name,) in rows}


def test_down_and_up_again_keeps_the_search(
    old_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    with Session(old_engine) as session:
        load(session, settings, tmp_path / "catalog", PAYMENTS)
    before = found(old_engine, q="pay", kind="component", type="service")
    assert "component:default/payments" in before and len(before) == 8

    downgrade(old_engine, DOWN)
    if old_engine.dialect.name == "sqlite":
        assert "search_facets" not in columns(old_engine, "catalog_entity")
        assert "search_facets" not in columns(old_engine, "catalog_entity_fts")
        with old_engine.connect() as connection:  # the old index, rebuilt from the entities
            matched = connection.execute(
                sa.text(
                    "SELECT count(*) FROM catalog_entity_fts WHERE catalog_entity_fts MATCH 'pay*'"
                )
            ).scalar_one()
        assert matched == 10
    else:
        assert "name_vector" not in columns(old_engine, "catalog_search")

    migrate(old_engine)
    if old_engine.dialect.name == "sqlite":
        assert "search_facets" in columns(old_engine, "catalog_entity_fts")
    else:
        assert "name_vector" in columns(old_engine, "catalog_search")
    assert found(old_engine, q="pay", kind="component", type="service") == before
    # The triggers of the new index keep it: a changed type changes the filter's words.
    with Session(old_engine) as session:
        load(session, settings, tmp_path / "catalog", [component("payments", type="library")])
    after = found(old_engine, q="pay", kind="component", type="service")
    assert "component:default/payments" not in after and len(after) == 7
    assert found(old_engine, q="pay", type="library")[0] == "component:default/payments"
