"""Which model this replica serves, as ``/metrics`` (``model_info``) and ``/api/model`` say.

Unpinned, a replica serves what it trains (and what its volume holds from before a
restart). The version it reports is the registry's when its newest training was
registered, else the newest model's local version (its training time).

Pinned (``MODEL_VERSION``), it serves that registry version and nothing else: until the
version is fetched and verified the replica is not ready and says why, and training only
registers candidates.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any, Literal

from . import metrics
from .mlflow_log import Registered
from .training import TrainedModel


@dataclasses.dataclass(frozen=True)
class Serving:
    """The model served: its registered name, version, whether pinned, where it came from."""

    name: str
    version: str
    pinned: bool
    source: Literal["mlflow", "local"]
    sha256: str

    def as_json(self) -> dict[str, Any]:
        """Describe it as ``/api/model``'s ``registry``."""
        return dataclasses.asdict(self)


class ServingState:
    """What is served now, or why the pinned version is not served yet (thread-safe)."""

    def __init__(self, name: str, pinned_version: str = "") -> None:
        self.name = name
        self.pinned_version = pinned_version
        self._current: Serving | None = None
        self._problem = f"version {pinned_version} of {name} is being fetched"
        self._lock = threading.Lock()

    @property
    def pinned(self) -> bool:
        """Say whether a registry version is pinned."""
        return bool(self.pinned_version)

    @property
    def current(self) -> Serving | None:
        """Return the model served (None before the first training or the pinned load)."""
        with self._lock:
            return self._current

    def waiting(self) -> str | None:
        """Return why the pinned version is not served yet (None: served, or nothing pinned)."""
        with self._lock:
            return self._problem if self.pinned and self._current is None else None

    def serve(self, serving: Serving) -> None:
        """Record what is served now, and export it as ``model_info``."""
        with self._lock:
            self._current = serving
            metrics.MODEL_INFO.clear()
            metrics.MODEL_INFO.labels(serving.name, serving.version).set(1)

    def failed(self, problem: str) -> None:
        """Record why the pinned version could not be loaded (readiness says it)."""
        with self._lock:
            self._problem = problem

    def trained(self, models: Sequence[TrainedModel], registered: Registered | None) -> None:
        """Record what an unpinned replica serves after training or loading its volume."""
        if self.pinned or not models:
            return
        if registered is not None:
            self.serve(Serving(self.name, registered.version, False, "mlflow", registered.sha256))
            return
        newest = max(models, key=lambda model: (model.trained_at, model.version))
        artifact = newest.card.get("artifact")
        digest = str(artifact.get("sha256", "")) if isinstance(artifact, dict) else ""
        self.serve(Serving(self.name, newest.version, False, "local", digest))
