"""The models this replica holds, by source, kept in memory and in the model store.

Training is on demand (``POST /train``) and each replica keeps what it trained: a model
is found by the query or series name it was trained for. Saving happens before the model
is used, so a restarted container finds on its volume what it answered before. A replica
pinned to a model-registry version holds that version's models only (:meth:`replace_all`).
Not to be confused with the model registry (MLflow, :mod:`.mlflow_log`).
"""

from __future__ import annotations

import threading

from . import metrics
from .model_store import ModelStore
from .training import Source, TrainedModel


class Registry:
    """The newest model of every source, safe to use from the request threads."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self._models: dict[Source, TrainedModel] = {}
        self._lock = threading.Lock()

    def load_stored(self) -> int:
        """Load every stored source's newest usable version; return how many."""
        loaded = self.store.load_all()
        with self._lock:
            for model in loaded:
                self._models[model.source] = model
            metrics.MODELS.set(len(self._models))
        return len(loaded)

    def add(self, model: TrainedModel) -> TrainedModel:
        """Save a newly trained model, then use it; return it with its complete card."""
        saved = self.store.save(model)
        with self._lock:
            self._models[saved.source] = saved
            metrics.MODELS.set(len(self._models))
        return saved

    def replace_all(self, models: list[TrainedModel]) -> None:
        """Serve exactly ``models`` (a pinned registry version), keeping nothing else."""
        with self._lock:
            self._models = {model.source: model for model in models}
            metrics.MODELS.set(len(self._models))

    def get(self, source: Source) -> TrainedModel | None:
        """Return the model of a source, if this replica was trained for it."""
        with self._lock:
            return self._models.get(source)

    def all(self) -> list[TrainedModel]:
        """Return every model, queries first, in the order of their names."""
        with self._lock:
            models = list(self._models.values())
        return sorted(models, key=lambda model: (model.source.kind, model.source.name))

    def queries(self) -> list[TrainedModel]:
        """Return the models trained on Prometheus queries (what the loop evaluates)."""
        return [model for model in self.all() if model.source.kind == "query"]
