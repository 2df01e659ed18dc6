"""A service's Flux sync state per environment, as its entity page and a merged change show it.

The scaffold writes one Flux Kustomization per environment, named as the service, in
``flux-system`` (:mod:`portal.scaffold.flux`), committed as
``clusters/<env>/services/<service>.yaml``. The environments of a service are those files
on GitOps main; each is read from that environment's cluster
(:class:`~portal.integrations.flux_status.FluxClusters`) into one :class:`SyncRow`.

Reads run in a small thread pool, all environments at once, and the page waits at most the
client's timeout (plus a little) for them: a cluster that hangs shows "did not answer" and
its answer, when it comes, is kept for the next page. Answers (errors too) are kept for
:data:`CACHE_SECONDS`, so a page reloaded or opened by many people reads each cluster once.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from portal.catalog.models import Entity
from portal.changes.environments import CLUSTERS, FileLister, promotion_order
from portal.clock import utcnow
from portal.config import Settings
from portal.integrations.flux_status import (
    FluxClusters,
    FluxStatusError,
    FluxStatusSource,
    KustomizationStatus,
)
from portal.integrations.git import GitError

logger = logging.getLogger(__name__)

FLUX_NAMESPACE = "flux-system"  # where the scaffold puts every service's Kustomizations
CACHE_SECONDS = 15.0
WAIT_MARGIN_SECONDS = 0.5
READERS = 4
NOT_CONFIGURED = (
    "Kubernetes is not configured: set PORTAL_KUBECONFIG, or PORTAL_KUBERNETES=in-cluster, "
    "to see what Flux applied."
)
_REVISION_SHA = re.compile(r"(?:@sha1:|@sha256:|/)([0-9a-f]{40}|[0-9a-f]{64})$")
SyncKind = Literal["ready", "not-ready", "unknown", "not-found", "no-cluster", "error"]
_LABELS: dict[SyncKind, str] = {
    "ready": "Ready",
    "not-ready": "Not ready",
    "unknown": "Unknown",
    "not-found": "Not found",
    "no-cluster": "No cluster",
    "error": "Unreadable",
}
Lookup = KustomizationStatus | None | FluxStatusError


class ClusterSources(Protocol):
    """Which cluster an environment is read from (``FluxClusters`` has it)."""

    @property
    def shared(self) -> bool:
        """Return True when one cluster answers for every environment."""
        ...

    def for_environment(self, environment: str) -> FluxStatusSource | None:
        """Return the environment's cluster; None when none is configured for it."""
        ...

    def close(self) -> None:
        """Close the clients."""
        ...


def revision_sha(revision: str) -> str:
    """Return the commit sha of a Flux revision (``main@sha1:<sha>``, older ``main/<sha>``)."""
    found = _REVISION_SHA.search(revision)
    return found.group(1) if found else ""


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """Say briefly how long ago ``moment`` was (``5m``, ``3h``, ``2d``); empty when unknown."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = max(0, int(((now or utcnow()) - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h" if seconds < 48 * 3600 else f"{seconds // 86400}d"


@dataclass(frozen=True)
class SyncRow:
    """One environment of a service: what its Kustomization says, ready to show."""

    environment: str
    kind: SyncKind
    message: str = ""
    status: KustomizationStatus | None = None
    age: str = ""

    @property
    def label(self) -> str:
        """Name the state for a badge."""
        return _LABELS[self.kind]

    @property
    def revision(self) -> str:
        """Return the last applied revision's commit, short (empty when none)."""
        sha = revision_sha(self.status.last_applied_revision) if self.status else ""
        return sha[:12]

    @property
    def attempted_other(self) -> str:
        """Return the last attempted commit (short) when it differs from the applied one."""
        if self.status is None:
            return ""
        attempted = revision_sha(self.status.last_attempted_revision)
        applied = revision_sha(self.status.last_applied_revision)
        return attempted[:12] if attempted and attempted != applied else ""


@dataclass(frozen=True)
class SyncState:
    """A service's rows; ``problem`` when they cannot be made (Kubernetes off, git down)."""

    service: str
    rows: tuple[SyncRow, ...] = ()
    problem: str = ""
    configured: bool = True


def overlay_of(path: str) -> str | None:
    """Return the environment a Kustomization's ``spec.path`` applies (``.../overlays/<env>``)."""
    parts = [part for part in path.strip().strip("/").split("/") if part not in ("", ".")]
    if len(parts) >= 2 and parts[-2] == "overlays":
        return parts[-1]
    return None


def to_row(environment: str, found: Lookup, *, shared: bool, now: datetime) -> SyncRow:
    """Turn one read of ``environment``'s Kustomization into its row.

    ``shared``: one cluster answers for every environment, so a Kustomization applying
    another environment's overlay is that environment's, not this one's.
    """
    if isinstance(found, FluxStatusError):
        return SyncRow(environment, "error", str(found))
    if found is None:
        return SyncRow(environment, "not-found", "Flux has no Kustomization of it here yet.")
    applies = overlay_of(found.path)
    if shared and applies is not None and applies != environment:
        message = f"The cluster runs the {applies} overlay, not this environment's."
        return SyncRow(environment, "not-found", message)
    kind: SyncKind = {"True": "ready", "False": "not-ready"}.get(found.ready or "", "unknown")  # type: ignore[assignment]
    message = found.message or ("No Ready condition yet." if found.ready is None else "")
    if found.suspended:
        message = f"Suspended. {message}".strip()
    return SyncRow(environment, kind, message, found, age(found.observed_at, now))


def services_by_environment(gitops: FileLister) -> dict[str, list[str]]:
    """Return each service's environments (``clusters/<env>/services/<service>.yaml``) on main."""
    found: dict[str, set[str]] = {}
    for path in gitops.list_files("main", f"{CLUSTERS}/"):
        parts = path.split("/")
        if len(parts) == 4 and parts[2] == "services" and parts[3].endswith(".yaml"):
            found.setdefault(parts[3].removesuffix(".yaml"), set()).add(parts[1])
    return {service: promotion_order(environments) for service, environments in found.items()}


class GitOpsReads(FileLister, Protocol):
    """What the pages read of GitOps main: its files, and which commits it contains."""

    def is_ancestor(self, commit: str, of: str) -> bool:
        """Return True when ``commit`` is ``of`` or one of its ancestors."""
        ...


class SyncStateRuntime:
    """Reads sync state for the pages: a bounded pool, a deadline, and a short-lived cache."""

    def __init__(
        self,
        clusters: ClusterSources | None,
        gitops: Callable[[], GitOpsReads],
        *,
        timeout: float,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clusters = clusters
        self.gitops = gitops
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Lookup]] = {}
        self._running: dict[tuple[str, str], Future[Lookup]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._listing: tuple[float, dict[str, list[str]]] | None = None

    @property
    def configured(self) -> bool:
        """Return True when a cluster can be read at all."""
        return self.clusters is not None

    def environments(self, service: str) -> list[str]:
        """Return the environments ``service`` has on main, listed at most once per cache time.

        Every Component page asks, with or without Kubernetes: one listing of ``clusters/``
        answers them all for ``cache_seconds`` instead of a git read per page.
        """
        with self._lock:
            listing = self._listing
        if listing is None or listing[0] <= self._clock():
            listing = (self._clock() + self.cache_seconds, services_by_environment(self.gitops()))
            with self._lock:
                self._listing = listing
        return listing[1].get(service, [])

    def state(self, service: str) -> SyncState:
        """Return the sync state of ``service`` in every environment it has on main."""
        if self.clusters is None:
            return SyncState(service, problem=NOT_CONFIGURED, configured=False)
        try:
            environments = self.environments(service)
        except GitError as exc:
            return SyncState(service, problem=f"The GitOps repository cannot be read: {exc}")
        return SyncState(service, tuple(self.rows(service, environments)))

    def rows(self, service: str, environments: Sequence[str]) -> list[SyncRow]:
        """Return one row per environment, waiting at most the timeout for all of them."""
        clusters = self.clusters
        if clusters is None:
            return []
        found: dict[str, Lookup] = {}
        pending: dict[str, Future[Lookup]] = {}
        for environment in environments:
            source = clusters.for_environment(environment)
            if source is None:
                continue
            cached = self._cached((environment, service))
            if cached is not None:
                found[environment] = cached[0]
            else:
                pending[environment] = self._submit((environment, service), source)
        wait_for(pending.values(), timeout=self.timeout + WAIT_MARGIN_SECONDS)
        for environment, future in pending.items():
            if future.done():
                found[environment] = future.result()
            else:
                found[environment] = FluxStatusError(
                    f"The cluster did not answer within {self.timeout:g} s."
                )
        now = utcnow()
        rows = []
        for environment in environments:
            if environment not in found:
                message = f"No cluster is configured for {environment} (PORTAL_KUBE_CONTEXTS)."
                rows.append(SyncRow(environment, "no-cluster", message))
            else:
                row = to_row(environment, found[environment], shared=clusters.shared, now=now)
                rows.append(row)
        return rows

    def _cached(self, key: tuple[str, str]) -> tuple[Lookup] | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and entry[0] > self._clock():
                return (entry[1],)
            return None

    def _submit(self, key: tuple[str, str], source: FluxStatusSource) -> Future[Lookup]:
        with self._lock:
            running = self._running.get(key)
            if running is not None:  # another page asked first: share its read
                return running
            if self._pool is None:
                self._pool = ThreadPoolExecutor(READERS, thread_name_prefix="flux-status")
            future = self._pool.submit(self._read, key, source)
            self._running[key] = future
            return future

    def _read(self, key: tuple[str, str], source: FluxStatusSource) -> Lookup:
        environment, service = key
        result: Lookup
        try:
            result = source.kustomization(FLUX_NAMESPACE, service)
        except FluxStatusError as exc:
            logger.warning("Flux status of %s in %s unreadable: %s", service, environment, exc)
            result = exc
        except Exception as exc:  # a client bug must not become a 5xx of the entity page
            logger.exception("Flux status of %s in %s failed", service, environment)
            result = FluxStatusError(f"Reading the cluster failed: {type(exc).__name__}")
        with self._lock:
            self._cache[key] = (self._clock() + self.cache_seconds, result)
            self._running.pop(key, None)
        return result

    def close(self) -> None:
        """Stop the readers and close the cluster clients (the app's shutdown)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self.clusters is not None:
            self.clusters.close()


def runtime_from_settings(
    settings: Settings, gitops: Callable[[], GitOpsReads]
) -> SyncStateRuntime:
    """Return the sync state runtime: a cluster per environment when Kubernetes is configured."""
    clusters = None
    if settings.kubeconfig is not None or settings.kubernetes == "in-cluster":
        clusters = FluxClusters(
            settings.kubeconfig,
            in_cluster=settings.kubernetes == "in-cluster",
            contexts=settings.kube_contexts,
            timeout=settings.kubernetes_timeout_seconds,
        )
    return SyncStateRuntime(clusters, gitops, timeout=settings.kubernetes_timeout_seconds)


def entity_sync_state(runtime: object, entity: Entity) -> SyncState | None:
    """Return the Deployments section of a Component's page; None when it has none.

    A Component is a service when Flux files of its name are on GitOps main (the catalog's
    ``default`` namespace only, as the cost line matches). Without Kubernetes the section
    says so; a repository that cannot be read then shows nothing rather than a problem
    nobody asked about.
    """
    if not isinstance(runtime, SyncStateRuntime):
        return None
    if entity.kind_key != "component" or entity.namespace != "default":
        return None
    state = runtime.state(entity.name)
    if state.problem and not state.configured:
        try:
            return state if runtime.environments(entity.name) else None
        except GitError:
            return None
    return state if state.rows or state.problem else None
