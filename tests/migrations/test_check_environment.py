"""Migration 0007: check runs get an environment column, back-filled from their names.

Runs on SQLite and, with PORTAL_TEST_DATABASE_URL, on PostgreSQL (the ``settings`` fixture).
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from portal.changes.models import CheckRun
from portal.db import migrate
from tests.migrations.support import CHANGE_ID, store_runs

BEFORE = "0006_decision_claim"  # the old_engine fixture stops there
# More runs of one environment than one UPDATE binds at once: the back-fill goes in slices.
MANY = 1201


def environments(engine: Engine) -> list[tuple[str, str | None]]:
    with Session(engine) as session:
        runs = session.exec(select(CheckRun).order_by(col(CheckRun.id))).all()
        return [(run.name, run.environment) for run in runs]


def test_the_environment_is_back_filled_from_the_names(old_engine: Engine) -> None:
    names = [
        "policy",
        "kustomize (dev)",
        "schema (prod)",
        "error budget",
        "cost (staging)",
        "semantics (dev) (prod)",  # the last parentheses name it, as the pages read it
        f"odd ({'x' * 64})",  # longer than any environment name: not one
        "broken (",
    ]
    store_runs(old_engine, names)

    migrate(old_engine)

    assert environments(old_engine) == [
        ("policy", None),
        ("kustomize (dev)", "dev"),
        ("schema (prod)", "prod"),
        ("error budget", None),
        ("cost (staging)", "staging"),
        ("semantics (dev) (prod)", "prod"),
        (f"odd ({'x' * 64})", None),
        ("broken (", None),
    ]


def test_every_run_of_a_large_table_is_back_filled(old_engine: Engine) -> None:
    store_runs(old_engine, ["schema (prod)"] * MANY + ["collisions"])

    migrate(old_engine)

    found = environments(old_engine)
    assert [environment for _, environment in found] == ["prod"] * MANY + [None]


def test_new_runs_store_their_environment_after_the_migration(old_engine: Engine) -> None:
    store_runs(old_engine, [])
    migrate(old_engine)

    with Session(old_engine) as session:
        session.add(
            CheckRun(change_id=CHANGE_ID, name="a (b)", environment=None, status="x", summary="")
        )
        session.add(
            CheckRun(change_id=CHANGE_ID, name="cost", environment="prod", status="x", summary="")
        )
        session.commit()

    assert environments(old_engine) == [("a (b)", None), ("cost", "prod")]
