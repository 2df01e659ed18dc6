"""Fixtures of the catalog page tests: the app with a real SQLite (or PostgreSQL) catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.cli import initialise
from portal.config import Settings
from tests.catalog.support import write_extra_entities
from tests.conftest import BACKSTAGE_EXAMPLES, REPO

CATALOG_FIXTURES = [
    str(BACKSTAGE_EXAMPLES / "all.yaml"),
    str(BACKSTAGE_EXAMPLES / "acme-corp.yaml"),
    str(REPO / "catalog"),
]


def _client(settings: Settings, paths: list[str]) -> Iterator[TestClient]:
    report = initialise(settings.model_copy(update={"catalog_paths": paths}))
    assert report is not None
    # Backstage's examples define three APIs by remote $text URLs, never fetched: reported.
    assert [p for p in report.problems if "remote placeholders" not in p.message] == []
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    """The app with Backstage's example catalog and the repository's own imported."""
    yield from _client(settings, CATALOG_FIXTURES)


@pytest.fixture
def display_client(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    """The same catalog plus titled, dangling and teamless entities (``EXTRA_ENTITIES``)."""
    yield from _client(settings, [*CATALOG_FIXTURES, str(write_extra_entities(tmp_path))])
