"""Fixtures: a test client that runs the application's lifespan."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import app


@pytest.fixture
def client() -> Iterator[TestClient]:
    """Yield a client of the started application."""
    with TestClient(app) as test_client:
        yield test_client
