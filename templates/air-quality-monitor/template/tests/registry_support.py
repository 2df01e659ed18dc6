"""A real MLflow tracking store for the registry tests, with no server: a ``file:`` store.

MLflow's file store keeps runs, artifacts and registered models in a folder (here the
test's ``tmp_path``); the client opens it directly, so the service's MLflow code runs for
real without a server. MLflow asks for ``MLFLOW_ALLOW_FILE_STORE=true`` before it opens one
(it recommends a database for servers; the platform's MLflow uses PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from prometheus_client import REGISTRY

# The client through the service's module, which first turns MLflow's usage reports off.
from app.registry import MlflowClient


def file_store(tmp_path: Path) -> str:
    """Return the URI of an empty file store in ``tmp_path``."""
    return (tmp_path / "mlruns").as_uri()


def client_of(uri: str) -> MlflowClient:
    """Return an MLflow client of the store at ``uri`` (tracking and registry)."""
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def run_artifacts(client: MlflowClient, run_id: str) -> Path:
    """Return the folder holding a run's artifacts in a file store."""
    uri = client.get_run(run_id).info.artifact_uri
    return Path(url2pathname(urlparse(uri).path))


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """Return a sample of this process's Prometheus registry (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until ``condition`` holds (the service works in background tasks)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
