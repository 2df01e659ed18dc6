"""Migration 0016: a page's relations are read from a covering index of catalog_relation.

Runs on SQLite and, with PORTAL_TEST_DATABASE_URL, on PostgreSQL (the ``settings`` fixture).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine

from portal.db import migrate
from tests.migrations.support import downgrade

BEFORE = "0015_fleet_update_batch"  # the old_engine fixture stops there
RELATIONS = sa.table(
    "catalog_relation",
    *(sa.column(name, sa.String) for name in ("origin_ref", "source_ref", "type", "target_ref")),
)


def indexes(engine: Engine) -> dict[str, list[str | None]]:
    return {
        str(index["name"]): list(index["column_names"])
        for index in sa.inspect(engine).get_indexes("catalog_relation")
    }


def test_the_index_covers_the_target_and_goes_down_and_up_again(old_engine: Engine) -> None:
    row = {"origin_ref": "component:default/a", "source_ref": "component:default/a"}
    with old_engine.begin() as connection:
        connection.execute(sa.insert(RELATIONS), [row | {"type": "ownedBy", "target_ref": "t"}])
    migrate(old_engine)
    found = indexes(old_engine)
    assert found["ix_catalog_relation_source"] == ["source_ref", "type", "target_ref"]
    assert "ix_catalog_relation_source_type" not in found
    with old_engine.connect() as connection:  # the rows stay
        assert connection.execute(sa.select(RELATIONS.c.target_ref)).scalars().all() == ["t"]
    downgrade(old_engine, BEFORE)
    found = indexes(old_engine)
    assert found["ix_catalog_relation_source_type"] == ["source_ref", "type"]
    assert "ix_catalog_relation_source" not in found
    migrate(old_engine)
    assert "ix_catalog_relation_source" in indexes(old_engine)
