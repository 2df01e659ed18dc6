"""The model registry's part of a training and of a start, when ``MLFLOW_TRACKING_URI`` is set.

- :meth:`Versioning.log_training`: every training becomes one version of
  ``<service>-detector`` (all the models it made, see :mod:`.bundle`), judged on held-out
  data first (:mod:`.holdout`). A registry that is down or refuses costs a warning in the
  log and ``model_registry_errors_total{operation="log"}``, never the training.
- :meth:`Versioning.keep_loading`: a pinned replica fetches its version, checks it and
  serves it, retrying every ``MODEL_RETRY_SECONDS`` until it can; meanwhile it is not ready.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import holdout, metrics
from .bundle import read_bundle, write_bundle
from .mlflow_log import MlflowRegistry, Registered, RegistryError
from .model_store import ModelStoreError
from .registry import Registry
from .serving import Serving, ServingState
from .settings import TEMPLATE, TEMPLATE_VERSION, VERSION, Settings
from .sources import TrainingSet
from .training import TrainedModel, iso

logger = logging.getLogger(__name__)
# Card parameters that differ per model (its own calibration): in the card, not the params.
_PER_MODEL = frozenset({"forest_center", "forest_scale"})


def _param(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


class Versioning:
    """Logs trainings to the registry and loads the pinned version."""

    def __init__(self, settings: Settings, registry: MlflowRegistry, state: ServingState) -> None:
        self.settings = settings
        self.registry = registry
        self.state = state

    def log_training(
        self,
        sets: Sequence[TrainingSet],
        models: Sequence[TrainedModel],
        false_alarm_rate: float,
        now: datetime,
    ) -> Registered | None:
        """Judge, log and register one training's models; None when that failed (logged)."""
        try:
            figures = self._figures(sets, models, false_alarm_rate)
            facts = self._facts(sets, false_alarm_rate, now)
            with tempfile.TemporaryDirectory(prefix="model-version-") as scratch:
                card = write_bundle(Path(scratch), models, {**facts, "metrics": figures})
                tags = {**facts["tags"], "sha256": card["artifact"]["sha256"]}
                registered = self.registry.log(
                    Path(scratch),
                    run_name=f"train-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}",
                    params=self._params(models, false_alarm_rate),
                    metrics=figures,
                    tags=tags,
                )
        except (RegistryError, OSError, ValueError) as error:
            # The models are trained and served already: registering them is a bonus.
            metrics.REGISTRY_ERRORS.labels("log").inc()
            logger.warning(
                "model not registered", extra={"model": self.registry.name, "error": str(error)}
            )
            return None
        logger.info(
            "model registered",
            extra={"model": registered.name, "version": registered.version, **figures},
        )
        return registered

    @staticmethod
    def _figures(
        sets: Sequence[TrainingSet], models: Sequence[TrainedModel], false_alarm_rate: float
    ) -> dict[str, float]:
        """Return the run's metrics: the holdout's, and the training window's alarm rate."""
        counts = holdout.HoldoutCounts()
        for item in sets:
            counts += holdout.evaluate(item.series, false_alarm_rate, item.window.step)
        figures = counts.metrics()
        rates = [model.detector.calibration.training_alarm_rate for model in models]
        figures["training_alarm_rate"] = sum(rates) / len(rates)
        points = sum(model.card["training_window"]["points"] for model in models)
        figures["training_points"] = float(points)
        return figures

    def _facts(
        self, sets: Sequence[TrainingSet], false_alarm_rate: float, now: datetime
    ) -> dict[str, Any]:
        """Return the version card's facts; ``tags`` are the registry's version tags."""
        settings = self.settings
        kinds = {item.source.kind for item in sets}
        data_source = (
            f"prometheus {settings.prometheus_url}" if "query" in kinds else "inline series"
        )
        start = iso(min(item.window.start for item in sets))
        end = iso(max(item.window.end for item in sets))
        tags = {
            "service": settings.service_name,
            "template": TEMPLATE,
            "template_version": TEMPLATE_VERSION,
            "git_commit": settings.git_commit,
            "training_window_start": start,
            "training_window_end": end,
            "data_source": data_source,
            "primary_metric": holdout.PRIMARY_METRIC,
            "primary_metric_direction": holdout.PRIMARY_METRIC_DIRECTION,
        }
        return {
            "name": settings.registered_model,
            "created_at": now.astimezone(UTC).isoformat(),
            "service_version": VERSION,
            "false_alarm_rate": false_alarm_rate,
            "sources": [item.source.as_dict() for item in sets],
            "holdout": {"parameters": dict(holdout.PARAMETERS)},
            "tags": tags,
        }

    @staticmethod
    def _params(models: Sequence[TrainedModel], false_alarm_rate: float) -> dict[str, str]:
        """Return the run's parameters: the cards' shared parameters, flattened."""
        shared = models[0].card["parameters"]
        params = {key: _param(value) for key, value in shared.items() if key not in _PER_MODEL}
        steps = sorted({model.detector.step for model in models})
        params |= {
            "false_alarm_rate": str(false_alarm_rate),
            "models": str(len(models)),
            "step_seconds": _param(steps),
        }
        return params | {key: _param(value) for key, value in holdout.PARAMETERS.items()}

    def load_pinned(self, registry: Registry) -> bool:
        """Fetch, check and serve the pinned version; False (and why, for readiness) if not."""
        name, version = self.settings.registered_model, self.settings.model_version
        try:
            with tempfile.TemporaryDirectory(prefix="model-pinned-") as scratch:
                folder, digest = self.registry.fetch(version, Path(scratch))
                models, _ = read_bundle(folder, digest, name)
        except (RegistryError, ModelStoreError, OSError) as error:
            metrics.REGISTRY_ERRORS.labels("load").inc()
            self.state.failed(f"version {version} of {name} is not loaded: {error}")
            logger.warning(
                "pinned model not loaded",
                extra={"model": name, "version": version, "error": str(error)},
            )
            return False
        registry.replace_all(models)
        self.state.serve(Serving(name, version, True, "mlflow", digest))
        logger.info("pinned model loaded", extra={"model": name, "version": version})
        return True

    async def keep_loading(self, registry: Registry) -> None:
        """Try to load the pinned version until it is served, every ``MODEL_RETRY_SECONDS``."""
        while True:
            if await asyncio.to_thread(self.load_pinned, registry):
                return
            await asyncio.sleep(self.settings.model_retry_seconds)
