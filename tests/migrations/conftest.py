"""The database before a migration: each test module names that revision as ``BEFORE``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from portal.config import Settings
from portal.db import make_engine, migrate


@pytest.fixture
def sqlite_start() -> None:
    """Start from an empty database: these tests migrate step by step themselves."""
    return


@pytest.fixture
def old_engine(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine whose database stops at the test module's ``BEFORE`` revision.

    SQLite, or PostgreSQL with PORTAL_TEST_DATABASE_URL (the ``settings`` fixture).
    """
    engine = make_engine(settings)
    migrate(engine, request.module.BEFORE)
    yield engine
    engine.dispose()
