"""Migration 0009: who proposed an edit, why, its evidence; the API token table.

Runs on SQLite and, with PORTAL_TEST_DATABASE_URL, on PostgreSQL (the ``settings`` fixture).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session

from portal.auth.models import ServiceToken
from portal.db import migrate
from tests.migrations.support import columns, downgrade, store_runs

BEFORE = "0008_approval_override"  # the old_engine fixture stops there
COLUMNS = {"proposed_by", "reason", "evidence"}


def test_existing_changes_keep_working_and_tokens_can_be_stored(old_engine: Engine) -> None:
    store_runs(old_engine, [])
    migrate(old_engine)
    changes = sa.table(
        "review_change",
        sa.column("proposed_by", sa.String),
        sa.column("reason", sa.String),
        sa.column("evidence", sa.JSON),
    )
    with old_engine.begin() as connection:
        assert connection.execute(
            sa.select(changes.c.proposed_by, changes.c.reason, changes.c.evidence)
        ).all() == [(None, None, None)]
    evidence = [{"label": "chart", "figure": "data:image/png;base64,iVBO"}]
    with old_engine.begin() as connection:
        connection.execute(
            sa.update(changes).values(
                proposed_by="token:abc (bot)", reason="r" * 5000, evidence=evidence
            )
        )
    with Session(old_engine) as session:
        session.add(
            ServiceToken(
                id="abc",
                name="bot",
                secret_sha256="0" * 64,
                scopes=["changes:propose"],
                services=["payments"],
                created_by="user:default/ada.lovelace",
            )
        )
        session.commit()
    with Session(old_engine) as session:
        token = session.get(ServiceToken, "abc")
        assert token is not None and token.services == ["payments"]
    with old_engine.begin() as connection:
        stored = connection.execute(sa.select(changes.c.reason, changes.c.evidence)).one()
    assert stored == ("r" * 5000, evidence)


def test_the_migration_goes_down_and_up_again(old_engine: Engine) -> None:
    migrate(old_engine)
    assert columns(old_engine) >= COLUMNS
    assert "auth_service_token" in sa.inspect(old_engine).get_table_names()
    downgrade(old_engine, BEFORE)
    assert not COLUMNS & columns(old_engine)
    assert "auth_service_token" not in sa.inspect(old_engine).get_table_names()
    migrate(old_engine)
    assert columns(old_engine) >= COLUMNS
