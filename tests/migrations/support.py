"""What the migration tests share: a stored change with check runs, going down, columns."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from portal.db import MIGRATIONS_DIR

NOW = datetime(2026, 11, 24, tzinfo=UTC)
CHANGE_ID = "c0ffee"  # the change store_runs stores

# The tables as migration 0006 left them (not the models, which follow the newest schema).
CHANGES = sa.table(
    "review_change",
    *(sa.column(name, sa.String) for name in ("id", "kind", "title", "template")),
    *(sa.column(name, sa.String) for name in ("template_version", "service", "owner_ref")),
    *(sa.column(name, sa.String) for name in ("requester_ref", "branch", "status")),
    sa.column("answers", sa.JSON),
    sa.column("steps", sa.JSON),
    sa.column("revision", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
CHECKS = sa.table(
    "review_check",
    sa.column("change_id", sa.String),
    sa.column("name", sa.String),
    sa.column("status", sa.String),
    sa.column("summary", sa.String),
    sa.column("findings", sa.JSON),
    sa.column("duration_ms", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def store_runs(engine: Engine, names: list[str]) -> None:
    """Store change ``CHANGE_ID`` and a passed check run of each of ``names``."""
    change = {
        "id": CHANGE_ID,
        "kind": "scaffold",
        "title": "Create payments",
        "template": "fastapi-service",
        "template_version": "1.0.0",
        "service": "payments",
        "owner_ref": "group:default/platform-team",
        "requester_ref": "user:default/ada.lovelace",
        "branch": "scaffold/payments",
        "status": "ready",
        "answers": {},
        "steps": [],
        "revision": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    runs = [
        {
            "change_id": CHANGE_ID,
            "name": name,
            "status": "passed",
            "summary": "",
            "findings": [],
            "duration_ms": 1,
            "created_at": NOW,
        }
        for name in names
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(CHANGES), [change])
        if runs:
            connection.execute(sa.insert(CHECKS), runs)


def alembic_config() -> Config:
    """An alembic configuration of the portal's migrations (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database of ``engine`` down to ``revision``."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def columns(engine: Engine, table: str = "review_change") -> set[str]:
    """Return the column names ``table`` has in the database."""
    return {column["name"] for column in sa.inspect(engine).get_columns(table)}
