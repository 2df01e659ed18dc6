"""A generated aiops-detector serving against a real MLflow, trained into model versions.

For the tests of the model registry (the template's own in ``test_aiops_mlflow.py``, the
portal's promotion end to end): :func:`serving_detector` runs a rendered detector from its
runtime lock with ``MLFLOW_TRACKING_URI`` set (pinned when ``model_version`` is given), and
:func:`train_versions` trains it ``count`` times on inline series, each training a new
version of ``<service>-detector``. :class:`MlflowReader` reads what MLflow holds over its
REST API, as any client would. Every test names its service uniquely (:func:`unique_name`):
the MLflow server is shared by a test process.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.templates.aiops_render import TEMPLATE
from tests.templates.rendering import Rendered
from tests.templates.service_process import offline_env, serving_app
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv

HISTORY_START = 1772409600.0  # 2026-03-02T00:00:00Z, a Monday
STEP = 300.0
DAYS = 3
GIT_COMMIT = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def unique_name(prefix: str = "aiops") -> str:
    """Return a service name no other test of this MLflow server uses (a DNS-1123 label)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def registered_name(rendered: Rendered) -> str:
    """Return the registered model the rendered detector logs to."""
    return f"{rendered.answers['name']}-detector"


@contextmanager
def serving_detector(
    rendered: Rendered,
    mlflow_url: str,
    scratch: Path,
    model_version: str = "",
    *,
    ready_path: str = "/readyz",
) -> Iterator[str]:
    """Serve the rendered detector from its runtime lock against ``mlflow_url``; yield its URL.

    Yielded once ``ready_path`` answers 200: ``/readyz`` of a pinned replica once its version
    is fetched and verified (``/healthz`` to look at a replica that is not ready).
    """
    python = lock_venv(rendered.dest / RUNTIME_LOCK, TEMPLATE.name)
    env = offline_env(
        MLFLOW_TRACKING_URI=mlflow_url,
        MODEL_VERSION=model_version,
        MODEL_DIR=str(scratch / "models"),
        GIT_COMMIT=GIT_COMMIT,
        BACKGROUND_DETECT="false",
        LOG_LEVEL="WARNING",
        MAX_ATTEMPTS="1",
        MODEL_RETRY_SECONDS="1",
    )
    with serving_app(rendered.dest, env, python=python, ready_path=ready_path) as url:
        yield url


def latency(seed: int) -> list[list[float]]:
    """Return ``DAYS`` of a daily wave with seeded noise, as inline ``[timestamp, value]`` pairs."""
    times = HISTORY_START + STEP * np.arange(int(DAYS * 86400 / STEP), dtype=np.float64)
    hours = np.mod(times, 86400) / 3600
    rng = np.random.default_rng(seed)
    values = (
        200 + 60 * np.cos((hours - 14) / 24 * 2 * math.pi) + rng.normal(0, 4 + seed % 5, times.size)
    )
    return [[float(t), float(v)] for t, v in zip(times, values, strict=True)]


def train_versions(service_url: str, count: int, *, first_seed: int = 1) -> list[str]:
    """POST /train ``count`` times (one inline series, other noise each time).

    Returns the registry versions the trainings created, oldest first; a training whose
    version was not registered fails the test.
    """
    versions = []
    with httpx.Client(base_url=service_url, trust_env=False, timeout=120) as client:
        for seed in range(first_seed, first_seed + count):
            answer = client.post("/train", json={"series": {"latency": latency(seed)}})
            assert answer.status_code == 200, answer.text
            registry = answer.json()["registry"]
            assert registry["version"] is not None, f"training {seed} was not registered"
            versions.append(str(registry["version"]))
    return versions


class MlflowReader:
    """What an MLflow tracking server holds, read over its REST API."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, trust_env=False, timeout=30)

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def _get(self, path: str, **params: str) -> Any:
        answer = self.client.get(f"/api/2.0/mlflow/{path}", params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Return the registered model's versions, oldest first, tags as a dict."""
        found = self._get("model-versions/search", filter=f"name='{name}'")
        versions = found.get("model_versions", [])
        for version in versions:
            version["tags"] = {tag["key"]: tag["value"] for tag in version.get("tags", [])}
        return sorted(versions, key=lambda version: int(version["version"]))

    def run(self, run_id: str) -> dict[str, Any]:
        """Return a run with its metrics and params as dicts."""
        run = self._get("runs/get", run_id=run_id)["run"]
        data = run.get("data", {})
        return {
            "info": run["info"],
            "metrics": {item["key"]: item["value"] for item in data.get("metrics", [])},
            "params": {item["key"]: item["value"] for item in data.get("params", [])},
        }

    def artifact(self, run_id: str, path: str) -> bytes:
        """Download one artifact of a run, through the server."""
        answer = self.client.get("/get-artifact", params={"path": path, "run_uuid": run_id})
        assert answer.status_code == 200, answer.text
        return answer.content
