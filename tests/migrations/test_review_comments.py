"""Migration 0010: inline review comments get their own table; the chain keeps one head.

Runs on SQLite and, with PORTAL_TEST_DATABASE_URL, on PostgreSQL (the ``settings`` fixture).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlmodel import Session

from portal.db import migrate
from portal.review.comments import ReviewComment, comments_of
from tests.migrations.support import CHANGE_ID, alembic_config, columns, downgrade, store_runs

BEFORE = "0009_edit_changes"  # the old_engine fixture stops there


def tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_the_comment_table_comes_and_goes_with_its_migration(old_engine: Engine) -> None:
    store_runs(old_engine, [])
    assert "review_comment" not in tables(old_engine)
    migrate(old_engine)
    assert columns(old_engine, "review_comment") == {
        "id", "change_id", "revision", "commit_sha", "path", "line", "side", "body",
        "line_text", "context", "author_ref", "created_at", "resolved_by", "resolved_at",
    }  # fmt: skip
    with Session(old_engine) as session:
        session.add(
            ReviewComment(
                change_id=CHANGE_ID, revision=1, commit_sha="a" * 40, path="p" * 4096,
                line=3, side="new", body="b" * 4000, line_text="x", context=["w", "x"],
                author_ref="user:default/grace.hopper",
            )
        )  # fmt: skip
        session.commit()
        [stored] = comments_of(session, CHANGE_ID)
        assert stored.context == ["w", "x"] and stored.resolved_at is None
    downgrade(old_engine, BEFORE)
    assert "review_comment" not in tables(old_engine)


def test_the_migrations_have_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == ["0017_search_tiers"]
