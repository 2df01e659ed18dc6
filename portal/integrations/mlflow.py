"""MLflow's model registry, read over its REST API (``/api/2.0/mlflow/...``) with httpx.

The portal reads registered models, their versions, aliases and tags, and the metrics of
the run that produced each version. It never writes to the registry: a promotion is a pin
in the GitOps repository, reviewed like any other change. ``ModelRegistry`` is what the
portal needs; :class:`MlflowRegistry` talks to a real server and
:class:`FakeModelRegistry` holds models in memory for unit tests.

A slow or absent server raises :class:`RegistryUnavailableError` (the pages say so); an
answer that is not what MLflow documents raises :class:`RegistryError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import httpx

from portal.config import Settings
from portal.integrations.json_http import JsonHttpServer
from portal.integrations.mlflow_json import read_metrics, read_pairs, read_text, read_time

DEFAULT_TIMEOUT_SECONDS = 5.0
API_PATH = "/api/2.0/mlflow/"
PAGE_SIZE = 1000  # the most registered-models/search returns per page
RUN_BATCH = 100  # run ids per runs/search filter: a short, bounded IN (...) list
EXPERIMENT_BATCH = 1000  # experiment ids per runs/search: a bounded SQL IN list server-side
RUN_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")  # MLflow's are 32 hex digits


class RegistryError(RuntimeError):
    """The registry answered something the portal cannot use."""


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached in time (or answered 5xx)."""


@dataclass(frozen=True)
class RegisteredModel:
    """One registered model: its aliases (alias -> version) and its newest version."""

    name: str
    created_at: datetime | None
    updated_at: datetime | None
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    latest_version: str | None = None


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model, with the metrics of the run that logged it.

    ``version`` is MLflow's version number as text ("3"); ``metrics`` holds the latest
    value of each metric of ``run_id`` (empty when the version has no run).
    """

    name: str
    version: str
    created_at: datetime | None
    status: str = "READY"
    run_id: str | None = None
    source: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def number(self) -> int:
        """The version as a number, for sorting (0 when MLflow sent something else)."""
        return int(self.version) if self.version.isdigit() else 0


class ModelRegistry(Protocol):
    """What the portal reads of a model registry."""

    @property
    def url(self) -> str:
        """Where the registry is (shown on the pages)."""
        ...

    def models(self) -> list[RegisteredModel]:
        """Return every registered model, by name (a fixed number of calls, paged)."""
        ...

    def versions(self, name: str) -> list[ModelVersion]:
        """Return every version of ``name`` with its run's metrics, oldest first.

        An unknown model gives an empty list.
        """
        ...


@dataclass
class FakeModelRegistry:
    """A registry in memory, for unit tests: models and versions are added by the test.

    ``unavailable`` set makes every call raise :class:`RegistryUnavailableError` with it;
    ``calls`` counts the calls, so a test can check how many a page makes.
    """

    registered: dict[str, RegisteredModel] = field(default_factory=dict)
    by_model: dict[str, list[ModelVersion]] = field(default_factory=dict)
    unavailable: str | None = None
    calls: int = 0
    url: str = "fake://registry"

    def add(self, model: RegisteredModel, versions: Sequence[ModelVersion] = ()) -> None:
        """Register ``model`` with ``versions`` (replacing any of the same name)."""
        self.registered[model.name] = model
        self.by_model[model.name] = list(versions)

    def _call(self) -> None:
        self.calls += 1
        if self.unavailable is not None:
            raise RegistryUnavailableError(self.unavailable)

    def models(self) -> list[RegisteredModel]:
        """Return the registered models by name."""
        self._call()
        return [self.registered[name] for name in sorted(self.registered)]

    def versions(self, name: str) -> list[ModelVersion]:
        """Return the versions of ``name``, oldest first."""
        self._call()
        return sorted(self.by_model.get(name, []), key=lambda version: version.number)


def name_filter(name: str) -> str:
    """Return a ``model-versions/search`` filter selecting the versions of ``name``.

    MLflow's filter parser takes a quoted string as it is: it knows no escape for a quote
    inside, and a backslash before the closing quote swallows it. So the quote is one the
    name does not contain; a name with both quotes or a backslash becomes a ``LIKE``
    pattern with ``_`` (any one character) in their place, which selects a superset the
    caller narrows to the exact name. Nothing in a name can end the string early.
    """
    if "\\" not in name:
        if "'" not in name:
            return f"name = '{name}'"
        if '"' not in name:
            return f'name = "{name}"'
    return "name LIKE '{}'".format(re.sub(r"['\"\\\\]", "_", name))


def _batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    return (items[start : start + size] for start in range(0, len(items), size))


class MlflowRegistry(JsonHttpServer):
    """MLflow's model registry over its REST API 2.0, read with httpx.

    Every list is read in pages of ``page_size``; a version's metrics come from
    ``runs/search`` over every experiment, ``run_batch`` run ids per call, so a model's
    versions take a number of calls that grows with pages, never one call per version.
    ``transport`` replaces the network in tests.
    """

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
        *,
        page_size: int = PAGE_SIZE,
        run_batch: int = RUN_BATCH,
    ) -> None:
        """Talk to the MLflow tracking server at ``url``; each call gives up after ``timeout`` s."""
        super().__init__(url, timeout, transport, API_PATH)
        self.page_size = page_size
        self.run_batch = run_batch

    def _unreachable(self, error: Exception) -> RegistryUnavailableError:
        reason = self.unreachable_reason(error)
        return RegistryUnavailableError(f"MLflow at {self.url} is not reachable ({reason})")

    def _call(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any],
        *,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        """Send one request; return its JSON object (None: missing and ``missing_ok``)."""
        try:
            if method == "GET":
                response = self._client.get(path, params=dict(payload))
            else:
                response = self._client.post(path, json=dict(payload))
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise self._unreachable(error) from error
        try:
            body = response.json()
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        said = f": {str(message)[:300]}" if message else ""
        if response.status_code >= 500:
            raise RegistryUnavailableError(
                f"MLflow at {self.url} answered {response.status_code} to {path}{said}"
            )
        if response.status_code >= 400:
            missing = isinstance(body, dict) and body.get("error_code") == "RESOURCE_DOES_NOT_EXIST"
            if missing and missing_ok:
                return None
            raise RegistryError(
                f"MLflow at {self.url} refused {path} ({response.status_code}){said}"
            )
        if not isinstance(body, dict):
            raise RegistryError(f"MLflow at {self.url}: {path} did not answer a JSON object")
        return body

    def _pages(
        self, method: str, path: str, request: Mapping[str, Any], key: str
    ) -> list[dict[str, Any]]:
        """Return the ``key`` items of every page of a search."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            page = {**request, "max_results": self.page_size}
            if token:
                page["page_token"] = token
            body = self._call(method, path, page) or {}
            found = body.get(key, [])
            if not isinstance(found, list):
                raise RegistryError(f"MLflow at {self.url}: {path}: {key} is not a list")
            items.extend(item for item in found if isinstance(item, dict))
            token = body.get("next_page_token") or None
            if not isinstance(token, str | None):
                raise RegistryError(f"MLflow at {self.url}: {path}: next_page_token not text")
            if token is None:
                return items
            if token in seen:  # a server sending the same page again would loop forever
                raise RegistryError(f"MLflow at {self.url}: {path} repeated a page token")
            seen.add(token)

    def _model(self, raw: Mapping[str, Any], path: str) -> RegisteredModel:
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise RegistryError(f"MLflow at {self.url}: {path}: a registered model has no name")
        latest = [
            str(item.get("version"))
            for item in raw.get("latest_versions") or []
            if isinstance(item, dict) and str(item.get("version", "")).isdigit()
        ]
        return RegisteredModel(
            name=name,
            created_at=read_time(raw.get("creation_timestamp")),
            updated_at=read_time(raw.get("last_updated_timestamp")),
            description=read_text(raw.get("description")),
            tags=read_pairs(raw.get("tags"), "key", "value"),
            aliases=read_pairs(raw.get("aliases"), "alias", "version"),
            latest_version=max(latest, key=int) if latest else None,
        )

    def _version(self, raw: Mapping[str, Any], path: str) -> ModelVersion:
        name, version = raw.get("name"), raw.get("version")
        if not isinstance(name, str) or not isinstance(version, str | int):
            raise RegistryError(f"MLflow at {self.url}: {path}: a version has no name or number")
        run_id = raw.get("run_id")
        return ModelVersion(
            name=name,
            version=str(version),
            created_at=read_time(raw.get("creation_timestamp")),
            status=read_text(raw.get("status")) or "READY",
            run_id=run_id if isinstance(run_id, str) and run_id else None,
            source=read_text(raw.get("source")),
            description=read_text(raw.get("description")),
            tags=read_pairs(raw.get("tags"), "key", "value"),
        )

    def models(self) -> list[RegisteredModel]:
        """Return every registered model by name, with its aliases and newest version."""
        path = "registered-models/search"
        found = self._pages("GET", path, {}, "registered_models")
        return sorted((self._model(item, path) for item in found), key=lambda m: m.name)

    def versions(self, name: str) -> list[ModelVersion]:
        """Return every version of ``name``, oldest first, with aliases and run metrics."""
        got = self._call("GET", "registered-models/get", {"name": name}, missing_ok=True)
        if got is None:
            return []
        model = self._model(got.get("registered_model") or {}, "registered-models/get")
        path = "model-versions/search"
        found = self._pages("GET", path, {"filter": name_filter(name)}, "model_versions")
        versions = [v for v in (self._version(item, path) for item in found) if v.name == name]
        metrics = self.run_metrics([v.run_id for v in versions if v.run_id])
        aliases: dict[str, list[str]] = {}
        for alias, version in sorted(model.aliases.items()):
            aliases.setdefault(version, []).append(alias)
        done = [
            replace(
                version,
                aliases=tuple(aliases.get(version.version, ())),
                metrics=metrics.get(version.run_id or "", {}),
            )
            for version in versions
        ]
        return sorted(done, key=lambda version: version.number)

    def run_metrics(self, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Return the latest metrics of each run (by id), in a few ``runs/search`` calls."""
        wanted = sorted({run_id for run_id in run_ids if RUN_ID.fullmatch(run_id)})
        if not wanted:
            return {}
        # runs/search needs the experiments to look in; a version does not say which.
        experiments = [
            str(item["experiment_id"])
            for item in self._pages(
                "GET", "experiments/search", {"view_type": "ALL"}, "experiments"
            )
            if isinstance(item.get("experiment_id"), str | int)
        ]
        found: dict[str, dict[str, float]] = {}
        for runs in _batches(wanted, self.run_batch):
            # Ids are checked above (letters, digits, - and _): nothing to quote in them.
            listed = ", ".join(f"'{run_id}'" for run_id in runs)
            for batch in _batches(experiments, EXPERIMENT_BATCH):
                request = {
                    "experiment_ids": list(batch),
                    "filter": f"attributes.run_id IN ({listed})",
                    "run_view_type": "ALL",
                }
                for run in self._pages("POST", "runs/search", request, "runs"):
                    info, data = run.get("info"), run.get("data")
                    run_id = info.get("run_id") if isinstance(info, dict) else None
                    if isinstance(run_id, str):
                        found[run_id] = read_metrics(
                            data.get("metrics") if isinstance(data, dict) else None
                        )
        return found


def mlflow_registry(settings: Settings) -> ModelRegistry | None:
    """Return the registry ``PORTAL_MLFLOW_URL`` names, None when it is not set."""
    if not settings.mlflow_url:
        return None
    return MlflowRegistry(settings.mlflow_url, settings.mlflow_timeout_seconds)
