"""Which databases a test module runs on.

The ``database_url`` fixture (tests/conftest.py) runs every test that stores anything on
SQLite and on PostgreSQL. The page and flow modules marked :data:`PAGES_ON_SQLITE` run on
SQLite only: they read and write through the same stores, whose own tests (claims, jobs,
decisions, the pipeline, replicas) run on both databases, and each of their tests
scaffolds and checks a change (seconds of git, Copier and check tools the database does
not change). Twice over, they cost a fifth of the suite against CI's 20 minutes.
"""

from __future__ import annotations

import pytest

PAGES_ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
