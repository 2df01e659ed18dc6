"""Talking to a real MLflow in tests: a registry filled over REST, and a counting transport."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx

# The tags every version a generated service registers carries (the contract of issue 16).
MODEL_VERSION_TAGS = frozenset(
    {
        "service",
        "template",
        "template_version",
        "git_commit",
        "training_window_start",
        "training_window_end",
        "sha256",
        "data_source",
        "primary_metric",
        "primary_metric_direction",
    }
)


class CountingTransport(httpx.HTTPTransport):
    """The real transport, counting requests by MLflow API path (``runs/search``)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Count the request, then send it."""
        self.paths[request.url.path.rsplit("/mlflow/", 1)[-1]] += 1
        return super().handle_request(request)


class Rest:
    """What a service's training code does to the registry, over the REST API."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=f"{url}/api/2.0/mlflow/", timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(path, json=body)
        assert response.status_code == 200, f"{path}: {response.text}"
        answer: dict[str, Any] = response.json()
        return answer

    def model(self, name: str, runs: list[dict[str, float]], **tags: str) -> list[str]:
        """Register ``name`` with one version per run (its metrics); return the run ids."""
        self.post("registered-models/create", {"name": name})
        experiment = self.post("experiments/create", {"name": f"exp-{uuid.uuid4().hex}"})
        run_ids = []
        for metrics in runs:
            info = self.post(
                "runs/create", {"experiment_id": experiment["experiment_id"], "start_time": 1}
            )["run"]["info"]
            run_ids.append(info["run_id"])
            logged = [
                {"key": key, "value": value, "timestamp": 1, "step": 0}
                for key, value in metrics.items()
            ]
            self.post("runs/log-batch", {"run_id": info["run_id"], "metrics": logged})
            self.post(
                "model-versions/create",
                {
                    "name": name,
                    "source": f"runs:/{info['run_id']}/model",
                    "run_id": info["run_id"],
                    "tags": [{"key": k, "value": v} for k, v in tags.items()],
                },
            )
        return run_ids
