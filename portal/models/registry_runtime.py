"""What the Models routes read of the registry, the catalog and the GitOps main, and how often.

The overview is built from one paged ``registered-models/search``, one query of the
catalog's components and the pins on main (a fetch, then two git commands when main
moved), and kept for :data:`OVERVIEW_SECONDS`: a request after that gets the kept overview
at once while a background thread builds the next, so ``/models`` makes a fixed number of
MLflow calls however many models there are, and at most one refresh every few seconds.
A detail page adds the model's versions (a fixed number of calls, see
:meth:`portal.integrations.mlflow.MlflowRegistry.versions`) to the kept overview's pins.

The overview's version count is the newest version's number (MLflow numbers a model's
versions from 1 and never reuses one): counting them would read every version of every
model. The detail page counts exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session

from portal.changes.environments import deployable_environments
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.mlflow import ModelRegistry, ModelVersion, RegisteredModel, RegistryError
from portal.models.main_pins import read_main_pins
from portal.models.owners import ModelOwner, model_owners
from portal.models.pins import Pin
from portal.models.registry import (
    ModelDetail,
    ModelsOverview,
    RegistryStatus,
    build_detail,
    build_overview,
    summarize,
)
from portal.slo.runtime import Cached

OVERVIEW_SECONDS = 5.0


@dataclass(frozen=True)
class MainPins:
    """The pins of the services with models on main at ``commit``, or why they are unknown."""

    commit: str | None
    by_service: Mapping[str, Mapping[str, Pin]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    # The environments at ``commit`` (its cluster folders); the configured ones when unknown.
    environments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Loaded:
    """What one refresh read, kept beside the overview built from it."""

    overview: ModelsOverview
    owners: Mapping[str, ModelOwner]
    pins: MainPins
    registered: frozenset[str]


def _model_of(name: str, versions: Sequence[ModelVersion]) -> RegisteredModel:
    """Return the registered model as its versions describe it: aliases and the newest version."""
    aliases = {alias: version.version for version in versions for alias in version.aliases}
    newest = max(versions, key=lambda version: version.number, default=None)
    return RegisteredModel(
        name, None, None, aliases=aliases, latest_version=newest.version if newest else None
    )


class RegistryRuntime:
    """The registry (None: not configured), the kept overview, and one model's detail."""

    def __init__(
        self,
        registry: ModelRegistry | None,
        engine: Engine,
        gitops: Callable[[], GitOpsRepo] | None,
        environments: Sequence[str],
        seconds: float = OVERVIEW_SECONDS,
    ) -> None:
        """Read ``registry``, the catalog in ``engine`` and pins through ``gitops``.

        ``environments`` is ``PORTAL_ENVIRONMENTS``: the columns are main's cluster folders
        (:func:`deployable_environments`), those it names when it is set.
        """
        self.registry = registry
        self.engine = engine
        self.gitops = gitops
        self.environments = tuple(environments)
        self.cache: Cached[Loaded] = Cached(self._load, seconds)
        self._pins_lock = threading.Lock()
        self._pins: dict[tuple[str, frozenset[str]], MainPins] = {}

    def status(self, error: str | None = None) -> RegistryStatus:
        """Return the registry's state: not configured, unreachable (``error``) or ready."""
        if self.registry is None:
            return RegistryStatus("not_configured")
        if error is not None:
            return RegistryStatus("unreachable", self.registry.url, error)
        return RegistryStatus("ready", self.registry.url)

    def _main_pins(self, services: frozenset[str]) -> MainPins:
        if self.gitops is None or not services:
            return MainPins(None, environments=self.environments)
        try:
            repo = self.gitops()
            commit = repo.refresh()
            with self._pins_lock:
                known = self._pins.get((commit, services))
            if known is not None:
                return known
            environments = tuple(deployable_environments(repo, commit, self.environments))
            by_service = read_main_pins(repo.git_dir, commit, services, environments)
            pins = MainPins(commit, by_service, environments=environments)
        except (GitError, OSError) as error:
            problem = f"GitOps repository: the model pins on main cannot be read ({error})"
            return MainPins(None, problems=(problem,), environments=self.environments)
        with self._pins_lock:
            self._pins = {(commit, services): pins}  # only main's newest commit is asked for
        return pins

    def _load(self) -> Loaded:
        models: list[RegisteredModel] = []
        error: str | None = None
        if self.registry is not None:
            try:
                models = self.registry.models()
            except RegistryError as failure:
                error = str(failure)
        with Session(self.engine) as session:
            owners = model_owners(session)
        pins = self._main_pins(frozenset(owner.service for owner in owners.values()))
        by_service = pins.by_service
        overview = build_overview(
            self.status(error),
            models,
            owners,
            by_service,
            pins.environments,
            commit=pins.commit,
            problems=pins.problems,
        )
        return Loaded(overview, owners, pins, frozenset(model.name for model in models))

    def loaded(self) -> Loaded:
        """Return what the last refresh read; after :data:`OVERVIEW_SECONDS` start the next.

        Only the first call (or one after :meth:`forget`) waits for a refresh.
        """
        kept = self.cache.get_nowait()
        return kept if kept is not None else self.cache.get()

    def overview(self) -> ModelsOverview:
        """Return the overview of every model (see :meth:`loaded`)."""
        return self.loaded().overview

    def forget(self) -> None:
        """Drop the kept overview: the next request reads everything again."""
        self.cache.clear()

    def detail(self, name: str) -> ModelDetail | None:
        """Return one model's detail; None when neither the registry nor the catalog has it.

        When the registry does not answer the detail says so (the model may exist).
        """
        loaded = self.loaded()
        owner = loaded.owners.get(name)
        versions: list[ModelVersion] = []
        error: str | None = None
        if self.registry is not None:
            try:
                versions = self.registry.versions(name)
            except RegistryError as failure:
                error = str(failure)
        status = self.status(error)
        known = owner is not None or name in loaded.registered or bool(versions)
        if not known and status.state != "unreachable":
            return None
        pins = loaded.pins.by_service.get(owner.service) if owner else None
        summary = summarize(
            name,
            _model_of(name, versions) if versions or name in loaded.registered else None,
            owner,
            pins,
            loaded.pins.environments,
            len(versions),
        )
        return build_detail(
            summary,
            versions,
            status,
            loaded.pins.environments,
            pins=pins,
            commit=loaded.pins.commit,
            problems=loaded.pins.problems,
        )
