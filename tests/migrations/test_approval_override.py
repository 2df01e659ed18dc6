"""Migration 0008: a change records an approval over failed checks (reason and checks).

Runs on SQLite and, with PORTAL_TEST_DATABASE_URL, on PostgreSQL (the ``settings`` fixture).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine

from portal.db import migrate
from tests.migrations.support import columns, downgrade, store_runs

BEFORE = "0007_check_environment"  # the old_engine fixture stops there
CHANGES = sa.table(
    "review_change", sa.column("override_reason", sa.String), sa.column("override_checks", sa.JSON)
)


def overrides(engine: Engine) -> list[tuple[str | None, list[str] | None]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(CHANGES.c.override_reason, CHANGES.c.override_checks))
        return [(reason, checks) for reason, checks in rows]


def test_existing_changes_record_no_override_and_new_ones_can(old_engine: Engine) -> None:
    store_runs(old_engine, ["schema (prod)"])
    migrate(old_engine)
    assert overrides(old_engine) == [(None, None)]
    with old_engine.begin() as connection:
        connection.execute(
            sa.update(CHANGES).values(
                override_reason="r" * 2000, override_checks=["checkov", "cost (prod)"]
            )
        )
    assert overrides(old_engine) == [("r" * 2000, ["checkov", "cost (prod)"])]


def test_the_migration_goes_down_and_up_again(old_engine: Engine) -> None:
    store_runs(old_engine, [])
    migrate(old_engine)
    assert {"override_reason", "override_checks"} <= columns(old_engine)
    downgrade(old_engine, BEFORE)
    assert not {"override_reason", "override_checks"} & columns(old_engine)
    migrate(old_engine)
    assert {"override_reason", "override_checks"} <= columns(old_engine)
