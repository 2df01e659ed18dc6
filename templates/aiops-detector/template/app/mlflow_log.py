"""The MLflow model registry, through its official client: log a version, fetch a version.

:meth:`MlflowRegistry.log` records one training as a run of the experiment named after the
registered model (parameters, holdout metrics, the version's files under ``model/``) and
registers it as a new version (source ``runs:/<run_id>/model``, with its tags).
:meth:`MlflowRegistry.fetch` downloads a version's ``model/`` files and returns them with
the version's ``sha256`` tag, which the caller checks before loading anything.

``mlflow`` is imported on first use only, so a service without ``MLFLOW_TRACKING_URI`` never
loads it. Before that import the client's usage telemetry is turned off (the service must
not reach the internet) and, unless the environment says otherwise, an unreachable
registry fails within seconds instead of the client's minutes of retries
(``MLFLOW_HTTP_REQUEST_TIMEOUT``, ``..._MAX_RETRIES``, ``..._BACKOFF_FACTOR``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ARTIFACT_PATH = "model"
CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
_MESSAGE_LIMIT = 500


class RegistryError(RuntimeError):
    """The registry could not be reached, or refused or lacks what was asked for."""


@dataclasses.dataclass(frozen=True)
class Registered:
    """A version the registry holds."""

    name: str
    version: str
    run_id: str
    sha256: str


def _client_class() -> Any:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # read once, when mlflow is imported
    for name, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from mlflow import MlflowClient  # only when a registry is configured

    return MlflowClient


def _code(error: Exception) -> str:
    return str(getattr(error, "error_code", ""))


def _short(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "..."


class MlflowRegistry:
    """One registered model of one tracking server (or ``file:`` store)."""

    def __init__(self, tracking_uri: str, name: str) -> None:
        self.tracking_uri = tracking_uri
        self.name = name
        self._client: Any = None

    def client(self) -> Any:
        """Return the MLflow client (created on first use)."""
        if self._client is None:
            client_class = _client_class()
            self._client = client_class(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client

    def log(
        self,
        folder: Path,
        *,
        run_name: str,
        params: Mapping[str, str],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
    ) -> Registered:
        """Log a run holding ``folder``'s files under ``model/``; register it as a new version."""
        try:
            return self._log(folder, run_name, params, metrics, tags)
        except RegistryError:
            raise
        except Exception as error:  # the client raises its own, requests' and OS errors
            raise RegistryError(
                f"logging to {self.tracking_uri} failed: {_short(error)}"
            ) from error

    def _log(
        self,
        folder: Path,
        run_name: str,
        params: Mapping[str, str],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
    ) -> Registered:
        from mlflow.entities import Metric, Param  # see _client_class

        client = self.client()
        experiment = self._experiment(client)
        run = client.create_run(experiment, run_name=run_name, tags=dict(tags))
        run_id = str(run.info.run_id)
        try:
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
                params=[Param(key, str(value)) for key, value in params.items()],
            )
            client.log_artifacts(run_id, str(folder), artifact_path=ARTIFACT_PATH)
        except Exception:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id, status="FINISHED")
        self._registered_model(client, tags)
        version = client.create_model_version(
            self.name, f"runs:/{run_id}/{ARTIFACT_PATH}", run_id=run_id, tags=dict(tags)
        )
        return Registered(self.name, str(version.version), run_id, tags.get("sha256", ""))

    def _experiment(self, client: Any) -> str:
        """Return the id of the experiment named after the model, created when missing."""
        found = client.get_experiment_by_name(self.name)
        if found is None:
            try:
                return str(client.create_experiment(self.name))
            except Exception as error:
                if _code(error) != "RESOURCE_ALREADY_EXISTS":  # another replica was first
                    raise
                found = client.get_experiment_by_name(self.name)
        if found.lifecycle_stage != "active":
            raise RegistryError(f"the experiment {self.name!r} is deleted: restore it in MLflow")
        return str(found.experiment_id)

    def _registered_model(self, client: Any, tags: Mapping[str, str]) -> None:
        """Create the registered model on its first version."""
        try:
            client.get_registered_model(self.name)
            return
        except Exception as error:
            if _code(error) != "RESOURCE_DOES_NOT_EXIST":
                raise
        owner = {key: tags[key] for key in ("service", "template") if key in tags}
        try:
            client.create_registered_model(
                self.name,
                tags=owner,
                description=f"The anomaly detector of {tags.get('service', self.name)}.",
            )
        except Exception as error:
            if _code(error) != "RESOURCE_ALREADY_EXISTS":
                raise

    def fetch(self, version: str, folder: Path) -> tuple[Path, str]:
        """Download a version's ``model/`` files into ``folder``; return their folder and tag."""
        try:
            client = self.client()
            found = client.get_model_version(self.name, version)
            status = str(found.status)
            if status != "READY":
                raise RegistryError(f"version {version} of {self.name} is {status}, not READY")
            digest = (found.tags or {}).get("sha256", "")
            if not digest:
                raise RegistryError(f"version {version} of {self.name} has no sha256 tag")
            if not found.run_id:
                raise RegistryError(f"version {version} of {self.name} has no run")
            path = client.download_artifacts(found.run_id, ARTIFACT_PATH, str(folder))
        except RegistryError:
            raise
        except Exception as error:
            if _code(error) == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(f"{self.name} has no version {version}") from error
            raise RegistryError(
                f"fetching version {version} of {self.name} from {self.tracking_uri} failed: "
                f"{_short(error)}"
            ) from error
        return Path(path), str(digest)
