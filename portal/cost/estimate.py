"""The monthly cost of every service on the GitOps ``main``, estimated from its manifests.

Each service folder's environment overlays (``deploy/overlays/<env>``) are built with
kustomize, like the review's checks do, and priced by the review's rule: requests x replicas
(an HPA's ``minReplicas`` when one targets the workload) x 730 hours x the environment's
price sheet (``cost/prices/<env>.yaml`` on main, else OpenCost's default prices).
These are estimates of what ``main`` asks clusters to reserve, not measured costs.

An overlay that does not build is listed with its error and counts for nothing; nothing here
raises for bad manifests. Building reads git and runs kustomize, so the result is cached.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from portal.cost.manifests import CostEstimate, estimate_monthly_cost
from portal.cost.model import (
    DEFAULT_PRICES,
    HOURS_PER_MONTH,
    PRICES_DIR,
    Prices,
    PriceSheetError,
    environment_prices,
)
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.kubernetes import (
    KubectlNotFoundError,
    KubernetesToolError,
    kustomize_build,
)
from portal.slo.store import component_owners, team_name

SOURCE = "estimate from manifests on main"
ESTIMATE_SECONDS = 60.0
_OVERLAY = re.compile(
    r"^services/(?P<service>[^/]+)/deploy/overlays/(?P<env>[^/]+)/"
    r"(?:kustomization\.ya?ml|Kustomization)$"
)
_ENVIRONMENT = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class EnvironmentCost:
    """One service in one environment: its monthly figures, or why there are none."""

    environment: str
    currency: str = DEFAULT_PRICES.currency
    monthly: Decimal = Decimal(0)
    cpu: Decimal = Decimal(0)
    memory: Decimal = Decimal(0)
    error: str | None = None


@dataclass(frozen=True)
class ServiceCost:
    """One service folder on main: its environments and owning team."""

    service: str
    owner_ref: str | None
    environments: tuple[EnvironmentCost, ...]

    @property
    def team(self) -> str | None:
        """The owning team's plain name, None when no catalog Component names one."""
        return team_name(self.owner_ref) if self.owner_ref else None

    @property
    def monthly(self) -> Decimal:
        """The sum over the environments that built."""
        return sum((env.monthly for env in self.environments), Decimal(0))

    @property
    def cpu(self) -> Decimal:
        """The CPU part of ``monthly``."""
        return sum((env.cpu for env in self.environments), Decimal(0))

    @property
    def memory(self) -> Decimal:
        """The memory part of ``monthly``."""
        return sum((env.memory for env in self.environments), Decimal(0))

    @property
    def errors(self) -> list[str]:
        """Every environment's error, prefixed with the environment."""
        return [f"{env.environment}: {env.error}" for env in self.environments if env.error]


@dataclass(frozen=True)
class TeamCost:
    """The services of one team (``None``: no owner found) and their sum."""

    team: str | None
    services: tuple[ServiceCost, ...]

    @property
    def monthly(self) -> Decimal:
        """The sum of the team's services."""
        return sum((service.monthly for service in self.services), Decimal(0))

    @property
    def cpu(self) -> Decimal:
        """The CPU part of ``monthly``."""
        return sum((service.cpu for service in self.services), Decimal(0))

    @property
    def memory(self) -> Decimal:
        """The memory part of ``monthly``."""
        return sum((service.memory for service in self.services), Decimal(0))


@dataclass(frozen=True)
class CostIndex:
    """Every service's estimate at one commit of main, and problems met on the way."""

    services: tuple[ServiceCost, ...] = ()
    commit: str | None = None
    problems: tuple[str, ...] = ()

    def teams(self) -> list[TeamCost]:
        """Group the services by team, named teams first by name, unowned last."""
        names = sorted({service.team for service in self.services}, key=lambda t: (t is None, t))
        return [TeamCost(team, tuple(s for s in self.services if s.team == team)) for team in names]


def share(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part`` as a percentage of ``whole`` (one decimal), None when ``whole`` is zero."""
    if not whole:
        return None
    return (part * 100 / whole).quantize(Decimal("0.1"))


def _sheet(repo: GitOpsRepo, commit: str, files: set[str], environment: str) -> Prices:
    # ``files`` was listed once for every service: a sheet main lacks is not asked for.
    return environment_prices(
        environment, lambda path: repo.read_file(commit, path) if path in files else None
    )


def _priced(environment: str, estimate: CostEstimate, sheet: Prices) -> EnvironmentCost:
    cpu = sum((line.cpu_cores * line.replicas for line in estimate.lines), Decimal(0)) * (
        HOURS_PER_MONTH * sheet.cpu_core_hour
    )
    memory = sum((line.memory_gib * line.replicas for line in estimate.lines), Decimal(0)) * (
        HOURS_PER_MONTH * sheet.memory_gib_hour
    )
    # A workload the estimator could not read leaves the total short: say so beside it.
    error = "; ".join(estimate.errors) or None
    return EnvironmentCost(environment, sheet.currency, estimate.total, cpu, memory, error)


def _environment(
    repo: GitOpsRepo, commit: str, files: set[str], service_dir: Path, environment: str
) -> EnvironmentCost:
    if not _ENVIRONMENT.match(environment):
        return EnvironmentCost(environment, error="not a valid environment name")
    overlay = f"deploy/overlays/{environment}"
    try:
        sheet = _sheet(repo, commit, files, environment)
        objects = kustomize_build(service_dir / overlay, relative_to=service_dir)
    except PriceSheetError as error:
        return EnvironmentCost(environment, error=str(error))
    except KubectlNotFoundError as error:
        return EnvironmentCost(environment, error=f"cannot build {overlay}: {error}")
    except KubernetesToolError as error:
        return EnvironmentCost(environment, error=f"{overlay} does not build: {error}")
    return _priced(environment, estimate_monthly_cost(objects, sheet), sheet)


def build_cost_index(
    gitops: Callable[[], GitOpsRepo] | None, engine: Engine | None = None
) -> CostIndex:
    """Estimate every service folder on main, per environment; problems are never raised."""
    if gitops is None:
        return CostIndex()
    try:
        repo = gitops()
        repo.refresh()
        commit = repo.resolve(repo.main)
        files = set(repo.list_files(commit, "services")) | set(repo.list_files(commit, PRICES_DIR))
    except (GitError, OSError) as error:
        return CostIndex(problems=(f"GitOps repository: cannot be read ({error})",))
    # A service is a folder: files right under services/ (a .gitkeep) are not services.
    names = sorted(
        {
            parts[1]
            for parts in (path.split("/") for path in files)
            if parts[0] == "services" and len(parts) > 2
        }
    )
    overlays: dict[str, list[str]] = {name: [] for name in names}
    for path in files:
        match = _OVERLAY.match(path)
        if match:
            overlays[match["service"]].append(match["env"])
    owners = component_owners(engine, names)
    services = []
    with tempfile.TemporaryDirectory(prefix="portal-cost-") as scratch:
        root = Path(scratch) / "tree"
        try:
            repo.export_tree(commit, root, ["services"])
        except (GitError, OSError) as error:
            return CostIndex(commit=commit, problems=(f"GitOps repository: {error}",))
        for name in names:
            environments = tuple(
                _environment(repo, commit, files, root / "services" / name, environment)
                for environment in sorted(overlays[name])
            ) or (EnvironmentCost("-", error="no deploy/overlays/<env>: nothing to estimate"),)
            services.append(ServiceCost(name, owners.get(name), environments))
    return CostIndex(tuple(services), commit)
