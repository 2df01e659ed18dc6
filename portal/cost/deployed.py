"""What the GitOps ``main`` deploys of one service: its containers, requests and replicas.

Each environment overlay (``services/<service>/deploy/overlays/<env>``) is built with the
real kustomize, as the estimate and the review's checks do, so the requests and replicas
right-sizing starts from are the ones a change would edit. An overlay that does not build
is reported and the others are still read; nothing here raises for bad manifests.

Building runs kustomize, so results are kept per commit (a commit never changes): a page
seen twice on the same ``main`` builds once.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol

from portal.cost.model import Prices, PriceSheetError
from portal.cost.rightsizing import (
    DEFAULT_POLICY,
    WINDOW_DAYS,
    DeployedContainer,
    Policy,
    Recommendation,
    deployed_containers,
    recommend,
)
from portal.integrations.cost_metrics import CostSourceError, UsageMetrics
from portal.integrations.kubernetes import (
    KubectlNotFoundError,
    KubernetesToolError,
    kustomize_build,
)

_ENVIRONMENT = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_KUSTOMIZATION = re.compile(r"^(?P<env>[^/]+)/(?:kustomization\.ya?ml|Kustomization)$")
_CACHED_BUILDS = 64


def overlay_path(service: str, environment: str) -> str:
    """Return the folder of one environment's overlay in the GitOps repository."""
    return f"services/{service}/deploy/overlays/{environment}"


class TreeExporter(Protocol):
    """What reading a service's manifests needs of the GitOps repository (``GitOpsClone``)."""

    def list_files(self, ref: str, prefix: str = "") -> list[str]:
        """Return the file paths at ``ref`` under ``prefix``."""
        ...

    def export_tree(self, ref: str, dest: Path, paths: list[str]) -> None:
        """Write the files of ``paths`` at ``ref`` into ``dest``."""
        ...


@dataclass(frozen=True)
class Deployed:
    """One service on one commit of main: its environments, containers and build problems."""

    service: str
    commit: str
    environments: tuple[str, ...]
    containers: tuple[DeployedContainer, ...]
    problems: tuple[str, ...] = ()

    def in_environment(self, environment: str) -> list[DeployedContainer]:
        """Return the containers of one environment."""
        return [item for item in self.containers if item.environment == environment]


def _build(
    service_dir: Path, service: str, environment: str
) -> tuple[list[DeployedContainer], list[str]]:
    overlay = f"deploy/overlays/{environment}"
    try:
        objects = kustomize_build(service_dir / overlay, relative_to=service_dir)
    except KubectlNotFoundError as error:
        return [], [f"{environment}: cannot build {overlay}: {error}"]
    except KubernetesToolError as error:
        return [], [f"{environment}: {overlay} does not build: {error}"]
    return deployed_containers(objects, environment)


def read_deployed(repo: TreeExporter, service: str, commit: str) -> Deployed:
    """Build every environment overlay of ``service`` at ``commit``."""
    prefix = overlay_path(service, "")
    environments = sorted(
        {
            match["env"]
            for path in repo.list_files(commit, prefix)
            if (match := _KUSTOMIZATION.match(path[len(prefix) :]))
            and _ENVIRONMENT.match(match["env"])
        }
    )
    containers: list[DeployedContainer] = []
    problems: list[str] = []
    if not environments:
        problems.append(f"{prefix}<env>: no environment overlay on main")
        return Deployed(service, commit, (), (), tuple(problems))
    with tempfile.TemporaryDirectory(prefix="portal-rightsize-") as scratch:
        root = Path(scratch) / "tree"
        repo.export_tree(commit, root, [f"services/{service}"])
        for environment in environments:
            found, met = _build(root / "services" / service, service, environment)
            containers.extend(found)
            problems.extend(met)
    return Deployed(service, commit, tuple(environments), tuple(containers), tuple(problems))


class DeployedCache:
    """The last builds, by (service, commit): a commit's manifests never change."""

    def __init__(self, size: int = _CACHED_BUILDS) -> None:
        """Keep at most ``size`` builds, the least recently used dropped first."""
        self.size = size
        self._lock = threading.Lock()
        self._builds: OrderedDict[tuple[str, str], Deployed] = OrderedDict()

    def get(self, repo: TreeExporter, service: str, commit: str) -> Deployed:
        """Return the build of ``service`` at ``commit``, building it the first time."""
        key = (service, commit)
        with self._lock:
            if key in self._builds:
                self._builds.move_to_end(key)
                return self._builds[key]
        built = read_deployed(repo, service, commit)  # outside the lock: kustomize is slow
        with self._lock:
            self._builds[key] = built
            while len(self._builds) > self.size:
                self._builds.popitem(last=False)
        return built


@dataclass(frozen=True)
class Advice:
    """Right-sizing advice for one service on one commit, and what kept parts of it away."""

    recommendations: tuple[Recommendation, ...] = ()
    problems: tuple[str, ...] = ()
    reason: str | None = None  # why there is no advice at all (no usage metrics, ...)


def usage_window(today: date) -> tuple[datetime, datetime]:
    """Return the p95 window: the last 14 complete UTC days before ``today``."""
    end = datetime.combine(today, time(), tzinfo=UTC)
    return end - timedelta(days=WINDOW_DAYS), end


def gather_advice(
    metrics: UsageMetrics | None,
    prices: Callable[[str], Prices],
    deployed: Deployed,
    today: date,
    policy: Policy = DEFAULT_POLICY,
) -> Advice:
    """Ask for the p95 usage of ``deployed``'s service and advise each container.

    A usage source that fails, or a price sheet that cannot be read, is a reason or a
    problem in the answer, never an exception: the page shows it, the proposal refuses.
    """
    if metrics is None:
        return Advice(
            problems=deployed.problems,
            reason="no usage metrics: right-sizing needs Prometheus (PORTAL_PROMETHEUS_URL)",
        )
    start, end = usage_window(today)
    try:
        usage = metrics.container_usage(deployed.service, start, end)
    except (CostSourceError, OSError, ValueError) as error:
        return Advice(problems=deployed.problems, reason=f"usage metrics ({metrics.url}): {error}")
    sheets: dict[str, Prices] = {}
    problems = list(deployed.problems)
    for environment in deployed.environments:
        try:
            sheets[environment] = prices(environment)
        except PriceSheetError as error:
            problems.append(f"{environment}: {error}")
    return Advice(tuple(recommend(deployed.containers, usage, sheets, policy)), tuple(problems))
