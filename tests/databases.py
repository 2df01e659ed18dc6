"""Which databases a test module runs on.

The ``database_url`` fixture (tests/conftest.py) runs every test that stores anything on
SQLite and on PostgreSQL. The page and flow modules marked :data:`PAGES_ON_SQLITE` run on
SQLite only: they read and write through the same stores, whose own tests (claims, jobs,
decisions, the pipeline, replicas) run on both databases, and each of their tests
scaffolds and checks a change (seconds of git, Copier and check tools the database does
not change). Twice over, they cost a fifth of the suite against CI's 20 minutes. A module
of pages or of a flow marks all its tests at once with ``pytestmark = SQLITE_ONLY``; the
end-to-end scaffold flow (tests/scaffold/test_flow.py) keeps one run on PostgreSQL.
"""

from __future__ import annotations

import pytest

PAGES_ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# The same for a whole module (``pytestmark = SQLITE_ONLY``): its tests that use the
# database run on SQLite (tests/conftest.py applies it), the others are left alone.
SQLITE_ONLY = pytest.mark.sqlite_only


def sqlite_only(metafunc: pytest.Metafunc) -> None:
    """Run a test of a :data:`SQLITE_ONLY` module that uses a database on SQLite only."""
    marked = metafunc.definition.get_closest_marker("sqlite_only") is not None
    if marked and "database_url" in metafunc.fixturenames:
        # As a mark, so pytest applies it instead of the fixture's two parameters.
        metafunc.definition.add_marker(PAGES_ON_SQLITE)
