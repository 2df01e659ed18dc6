"""The MLflow model registry: every trained model logged as a run and a new model version.

A run in the experiment named after the registered model (``<service>-air-quality``) gets
the card's parameters, the holdout metrics and two artifacts under ``model/``: the skops
file and the card (never a pickle); then a new version of the registered model with source
``runs:/<run_id>/model`` and the tags of :func:`app.model_record.version_tags`. A pinned
version is downloaded back from the run named by its source.

Imported only when ``MLFLOW_TRACKING_URI`` is set: without it the service never loads the
MLflow client. Every failure is raised as :class:`app.model_record.RegistryError`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

# MLflow's client reports usage to its makers from its import on unless told not to; this
# service calls out to nothing but its data source and the platform's registry.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .model_record import (
    ARTIFACT_FILE,
    ARTIFACT_PATH,
    CARD_FILE,
    Downloaded,
    RegistryError,
    record_of,
)
from .settings import Settings
from .training import TrainedModels

ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
_RUN_SOURCE = re.compile(r"^runs:/(?P<run>[0-9a-f]{1,64})/(?P<path>[A-Za-z0-9_.-]+)$")
# The client retries a failing server 7 times with doubling waits by default (minutes): a
# training must not hang on a registry that is down, so the service asks for little. An
# operator may still set these variables in the Deployment; they then win.
_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}


class MlflowRegistry:
    """Logs trained models to MLflow and downloads pinned versions (the MLflow client)."""

    def __init__(self, settings: Settings) -> None:
        for name, value in _CLIENT_DEFAULTS.items():
            os.environ.setdefault(name, value)
        timeout = str(max(1, round(settings.registry_timeout_seconds)))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", timeout)
        self.settings = settings
        self.name = settings.registered_model
        uri = settings.mlflow_tracking_uri
        try:
            self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        except MlflowException as error:
            raise RegistryError(f"MLflow at {uri} cannot be used: {error.message}") from error

    # --- logging ---------------------------------------------------------------------------

    def log(self, models: TrainedModels, artifact: Path) -> str:
        """Log ``models`` (saved, its skops file at ``artifact``); return the new version."""
        try:
            return self._log(models, artifact)
        except MlflowException as error:
            raise RegistryError(f"logging to MLflow failed: {error.message}") from error
        except OSError as error:  # the client's own network errors are wrapped above
            raise RegistryError(f"logging to MLflow failed: {error}") from error

    def _experiment(self) -> str:
        found = self.client.get_experiment_by_name(self.name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(self.name))
        except MlflowException as error:
            # Another replica created it in between: use theirs.
            found = self.client.get_experiment_by_name(self.name)
            if error.error_code != ALREADY_EXISTS or found is None:
                raise
            return str(found.experiment_id)

    def _registered_model(self) -> None:
        try:
            self.client.create_registered_model(
                self.name,
                tags={"service": self.settings.service_name},
                description=f"Air-quality models of {self.settings.service_name}.",
            )
        except MlflowException as error:
            if error.error_code != ALREADY_EXISTS:
                raise

    def _log(self, models: TrainedModels, artifact: Path) -> str:
        record = record_of(models, self.settings)
        run = self.client.create_run(
            self._experiment(),
            start_time=int(models.trained_at.timestamp() * 1000),
            tags={"service": self.settings.service_name, "local_version": models.version},
            run_name=f"{self.name}-{models.version}",
        )
        run_id = run.info.run_id
        try:
            now = int(time.time() * 1000)
            self.client.log_batch(
                run_id,
                metrics=[Metric(key, value, now, 0) for key, value in record.metrics.items()],
                params=[Param(key, value) for key, value in record.params.items()],
                synchronous=True,
            )
            with tempfile.TemporaryDirectory(prefix="model-log-") as scratch:
                folder = Path(scratch)
                shutil.copyfile(artifact, folder / ARTIFACT_FILE)
                # The card travels with the file: it names the file beside it.
                card = json.loads(json.dumps(models.card))
                card["artifact"]["file"] = ARTIFACT_FILE
                text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
                (folder / CARD_FILE).write_text(text, encoding="utf-8")
                self.client.log_artifacts(run_id, str(folder), ARTIFACT_PATH)
        except BaseException:
            self._finish(run_id, "FAILED")
            raise
        self._finish(run_id, "FINISHED")
        self._registered_model()
        version = self.client.create_model_version(
            self.name,
            source=f"runs:/{run_id}/{ARTIFACT_PATH}",
            run_id=run_id,
            tags=record.tags,
            description=f"Trained by {self.settings.service_name} at {models.version}.",
            await_creation_for=0,  # the server answers READY: nothing to wait for
        )
        return str(version.version)

    def _finish(self, run_id: str, status: str) -> None:
        # update_run, not set_terminated: the latter prints the run's URL to stdout, where
        # this service writes only its JSON log lines.
        try:
            self.client.update_run(run_id, status=status)
        except MlflowException:
            if status == "FINISHED":
                raise

    # --- pinned versions -------------------------------------------------------------------

    def download(self, version: str, destination: Path) -> Downloaded:
        """Download version ``version``'s skops file and card into ``destination``."""
        try:
            found: Any = self.client.get_model_version(self.name, version)
            source = _RUN_SOURCE.fullmatch(str(found.source or ""))
            if source is None:
                raise RegistryError(
                    f"version {version} of {self.name} has the source {found.source!r}, "
                    "not the artifacts of a run (runs:/<run_id>/model)"
                )
            self.client.download_artifacts(source["run"], source["path"], str(destination))
        except MlflowException as error:
            raise RegistryError(
                f"version {version} of {self.name} cannot be read from MLflow: {error.message}"
            ) from error
        except OSError as error:
            raise RegistryError(f"version {version} of {self.name}: {error}") from error
        folder = destination / source["path"]
        return Downloaded(
            version=str(found.version),
            artifact=folder / ARTIFACT_FILE,
            card=folder / CARD_FILE,
            tags=dict(found.tags or {}),
        )
