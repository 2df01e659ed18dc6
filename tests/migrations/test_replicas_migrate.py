"""Replicas starting together on one empty PostgreSQL database: every one of them migrates."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import inspect

from portal.config import Settings
from portal.db import make_engine, migrate


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_replicas_starting_together_take_turns_at_migrating(settings: Settings) -> None:
    # Without turns the replicas block each other's CREATE TABLE for ever: a lock timeout
    # turns that hang into a failure.
    url = f"{settings.resolved_database_url()}%20-clock_timeout%3D20s"
    replica = settings.model_copy(update={"database_url": url})
    engines = [make_engine(replica) for _ in range(4)]
    start = threading.Barrier(len(engines))

    def start_replica(index: int) -> None:
        start.wait()  # as pods of one Deployment do: all at once, on the same empty schema
        migrate(engines[index])

    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            for outcome in [pool.submit(start_replica, i) for i in range(len(engines))]:
                outcome.result()
        tables = set(inspect(engines[0]).get_table_names())
        assert {"alembic_version", "review_change", "catalog_entity"} <= tables
    finally:
        for engine in engines:
            engine.dispose()
