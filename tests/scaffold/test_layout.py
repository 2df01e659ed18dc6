"""The GitOps layout is read, not assumed: environments from clusters/, dependsOn per cluster."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pathspec
import pytest
import yaml
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal.changes.environments import (
    cluster_folders,
    deployable_environments,
    environment_class,
    promotion_order,
)
from portal.changes.models import ChangeStatus, CheckRun
from portal.changes.store import get_change
from portal.cli import initialise
from portal.config import Settings
from portal.review.decide import approve
from portal.review.flux_sources import read_cluster
from portal.scaffold import jobs
from portal.scaffold.flux import flux_kustomizations
from portal.scaffold.layout import cluster_dependencies, depends_on, services_in_artifact
from portal.scaffold.runtime import ScaffoldRuntime
from tests.conftest import REPO, require_tool
from tests.databases import PAGES_ON_SQLITE
from tests.review.test_decide_race import REVIEWERS, load
from tests.scaffold.test_jobs import new_change

FLUX_EXAMPLE = REPO / "tests" / "data" / "flux" / "flux2-kustomize-helm-example"
SEED = REPO / "gitops-repo"


def tree(root: Path) -> dict[str, bytes]:
    """Every file of a folder, by its path inside it (as the GitOps tree reader gives them)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def kustomization(name: str, path: str, *after: str) -> bytes:
    spec: dict[str, object] = {
        "interval": "10m",
        "path": path,
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
    }
    if after:
        spec["dependsOn"] = [{"name": target} for target in after]
    document = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": spec,
    }
    return yaml.safe_dump(document).encode()


SYNC = kustomization("flux-system", "./clusters/qa")


class FakeLister:
    """A fake GitOps repository for the environment reader: paths at one ref."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.asked: list[tuple[str, str]] = []

    def list_files(self, ref: str, prefix: str = "") -> list[str]:
        self.asked.append((ref, prefix))
        return [path for path in self.paths if path.startswith(prefix)]


# Environments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("prod", "production"),
        ("production", "production"),
        ("prod-eu", "production"),
        ("production-2", "production"),
        ("products", "staging"),  # a name that merely starts like it is not production
        ("dev", "development"),
        ("development", "development"),
        ("local", "development"),
        ("dev-alice", "development"),
        ("devops", "staging"),
        ("staging", "staging"),
        ("qa", "staging"),
    ],
)
def test_environment_classes(name: str, expected: str) -> None:
    assert environment_class(name) == expected


def test_environments_are_ordered_as_a_change_is_promoted() -> None:
    assert promotion_order(["prod", "staging", "dev"]) == ["dev", "staging", "prod"]
    assert promotion_order(["production", "staging"]) == ["staging", "production"]
    assert promotion_order(["prod-us", "qa", "prod-eu", "dev-x", "qa"]) == [
        "dev-x",
        "qa",
        "prod-eu",
        "prod-us",
    ]


def test_the_clusters_are_the_folders_under_clusters() -> None:
    assert cluster_folders(tree(SEED)) == ["dev", "staging", "prod"]
    assert cluster_folders(tree(FLUX_EXAMPLE)) == ["staging", "production"]
    # A file in clusters/ is not a cluster, nor a folder whose name no Kubernetes label takes.
    paths = ["clusters/README.md", "clusters/Big_One/x.yaml", "clusters/qa/sync.yaml"]
    assert cluster_folders(paths) == ["qa"]


def test_configured_environments_choose_among_the_clusters_in_their_order() -> None:
    repo = FakeLister(["clusters/dev/a.yaml", "clusters/staging/a.yaml", "clusters/prod/a.yaml"])

    assert deployable_environments(repo, "abc123", []) == ["dev", "staging", "prod"]
    assert deployable_environments(repo, "abc123", ["prod", "dev"]) == ["prod", "dev"]
    # A configured name with no cluster folder cannot be deployed to: it is not offered.
    assert deployable_environments(repo, "abc123", ["staging", "production"]) == ["staging"]
    assert repo.asked[0] == ("abc123", "clusters/")


# dependsOn ----------------------------------------------------------------------------------


def test_our_seed_services_wait_for_infrastructure() -> None:
    files = tree(SEED)
    assert cluster_dependencies(files, "payments", ["dev", "staging", "prod"]) == {
        "dev": ["infrastructure"],
        "staging": ["infrastructure"],
        "prod": ["infrastructure"],
    }


def test_flux_reference_services_wait_for_what_its_apps_wait_for() -> None:
    files = tree(FLUX_EXAMPLE)
    # Its `apps` Kustomization applies ./staging of the `apps` ExternalArtifact (apps/staging)
    # after infra-configs, which itself waits for infra-controllers.
    assert cluster_dependencies(files, "payments", ["staging", "production"]) == {
        "staging": ["infra-configs"],
        "production": ["infra-configs"],
    }


def test_without_apps_the_end_of_the_infrastructure_chain_is_waited_for() -> None:
    files = {
        "clusters/qa/flux-system/gotk-sync.yaml": SYNC,
        "clusters/qa/controllers.yaml": kustomization("controllers", "./infra/controllers"),
        "clusters/qa/configs.yaml": kustomization("configs", "./infra/configs", "controllers"),
        "clusters/qa/policies.yaml": kustomization("policies", "./infra/policies", "controllers"),
    }
    assert depends_on(read_cluster("qa", files), "payments") == ["configs", "policies"]


def test_a_cluster_with_only_its_sync_gives_nothing_to_wait_for() -> None:
    files = {"clusters/qa/flux-system/gotk-sync.yaml": SYNC}
    assert depends_on(read_cluster("qa", files), "payments") == []


def test_apps_waiting_for_targets_the_cluster_lacks_or_in_other_namespaces_are_not_copied() -> None:
    other = yaml.safe_load(kustomization("billing", "./services/billing/deploy/overlays/qa"))
    other["spec"]["dependsOn"] = [
        {"name": "infrastructure"},
        {"name": "gone"},  # a target the cluster does not have: never copied
        {"name": "tenants", "namespace": "team-a"},  # another namespace's
    ]
    files = {
        "clusters/qa/flux-system/gotk-sync.yaml": SYNC,
        "clusters/qa/infrastructure.yaml": kustomization("infrastructure", "./infrastructure"),
        "clusters/qa/services/billing.yaml": yaml.safe_dump(other).encode(),
    }
    assert depends_on(read_cluster("qa", files), "payments") == ["infrastructure"]


def test_a_revision_does_not_wait_for_its_own_earlier_wiring() -> None:
    files = {
        "clusters/qa/flux-system/gotk-sync.yaml": SYNC,
        "clusters/qa/infrastructure.yaml": kustomization("infrastructure", "./infrastructure"),
    }
    files.update(flux_kustomizations("payments", ["qa"], depends_on=["infrastructure"]))
    own = kustomization("payments-jobs", "./services/payments/jobs", "payments")
    files["clusters/qa/services/payments-jobs.yaml"] = own

    assert depends_on(read_cluster("qa", files), "payments") == ["infrastructure"]


def test_each_environment_gets_its_own_targets() -> None:
    files = flux_kustomizations(
        "payments", ["staging", "production"], depends_on={"staging": ["infra-configs"]}
    )
    staging = yaml.safe_load(files["clusters/staging/services/payments.yaml"])
    production = yaml.safe_load(files["clusters/production/services/payments.yaml"])
    assert staging["spec"]["dependsOn"] == [{"name": "infra-configs"}]
    assert "dependsOn" not in production["spec"]


# Flux's reference repository, end to end ----------------------------------------------------

# What a platform team commits once before its first service: the templates' ServiceMonitor
# needs the Prometheus Operator's CRDs, which the reference repository does not install.
CRDS_RELEASE = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: prometheus-community
  namespace: flux-system
spec:
  interval: 24h
  url: https://prometheus-community.github.io/helm-charts
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: prometheus-operator-crds
  namespace: flux-system
spec:
  interval: 12h
  chart:
    spec:
      chart: prometheus-operator-crds
      sourceRef:
        kind: HelmRepository
        name: prometheus-community
"""


@pytest.fixture
def reference_runtime(
    settings: Settings, engine: Engine, tmp_path: Path
) -> Iterator[ScaffoldRuntime]:
    """A scaffold runtime on Flux's reference repository, with the Prometheus Operator's CRDs."""
    require_tool("kubectl")
    seed = tmp_path / "flux-seed"
    shutil.copytree(FLUX_EXAMPLE, seed)
    (seed / "README.md").unlink()
    controllers = seed / "infrastructure" / "controllers"
    (controllers / "prometheus-operator-crds.yaml").write_text(CRDS_RELEASE)
    listing = controllers / "kustomization.yaml"
    listing.write_text(listing.read_text() + "  - prometheus-operator-crds.yaml\n")
    seeded = settings.model_copy(
        update={"gitops_seed_dir": seed, "catalog_paths": [str(REPO / "catalog")]}
    )
    initialise(seeded, gitops=True)
    runtime = ScaffoldRuntime(engine, seeded)
    yield runtime
    runtime.stop()


@PAGES_ON_SQLITE  # a flow through stores whose own tests run on both databases
def test_a_service_scaffolded_into_flux_reference_layout_deploys_where_it_says(
    reference_runtime: ScaffoldRuntime,
) -> None:
    runtime = reference_runtime
    context = runtime.context
    assert runtime.environments() == ["staging", "production"]

    change = new_change(runtime, "podinfo-api")
    assert change.answers["environments"] == ["staging", "production"]
    assert jobs.run_pending(context) == 1
    with Session(context.engine) as session:
        done = get_change(session, change.id)
        assert done is not None and done.status is ChangeStatus.READY, done and done.error
        branch = done.branch
        runs = {
            r.name: r for r in session.exec(select(CheckRun).where(CheckRun.change_id == change.id))
        }

    wiring = runs["flux wiring"]
    assert wiring.status == "passed", wiring.findings
    assert "in production, staging" in wiring.summary
    repo = context.gitops()
    for env in ("staging", "production"):
        documents = repo.read_file(branch, f"clusters/{env}/services/podinfo-api.yaml")
        wired, *images = yaml.safe_load_all(documents)
        assert wired["kind"] == "Kustomization"
        assert [image["kind"] for image in images] == ["ImageRepository", "ImagePolicy"]
        assert wired["spec"]["dependsOn"] == [{"name": "infra-configs"}]
        assert wired["spec"]["path"] == f"./services/podinfo-api/deploy/overlays/{env}"
    # Its .sourceignore kept services/ out of the artifact: the change lets it in, in the diff.
    amended = repo.read_file(branch, ".sourceignore").decode()
    assert amended.startswith(repo.read_file("main", ".sourceignore").decode().rstrip("\n"))
    assert amended.endswith("\n!/services/\n")
    overlays = repo.list_files(branch, "services/podinfo-api/deploy/overlays/")
    assert {path.split("/")[4] for path in overlays} == {"staging", "production"}

    with Session(context.engine) as session:
        merged = approve(
            session, load(session, change.id), REVIEWERS[0], repo, runtime.context.settings
        )
        assert merged.status is ChangeStatus.MERGED
    assert "clusters/production/services/podinfo-api.yaml" in repo.list_files("main", "clusters/")
    assert repo.read_file("main", ".sourceignore").decode() == amended

    # The next service finds services/ in the artifact already: .sourceignore is left alone.
    second = new_change(runtime, "podinfo-web")
    assert jobs.run_pending(context) == 1
    with Session(context.engine) as session:
        rendered = get_change(session, second.id)
        assert rendered is not None and rendered.commit_sha
        commit = rendered.commit_sha
    assert repo.read_file(commit, ".sourceignore").decode() == amended


@pytest.mark.parametrize(
    ("sourceignore", "amended"),
    [
        ("/*\n!/apps/\n!/clusters/\n", True),  # the reference layout's
        ("services/\n", True),
        ("*.md\n", False),  # services/ is in the artifact already
        ("", False),
    ],
)
def test_sourceignore_is_amended_only_when_it_keeps_the_service_out(
    sourceignore: str, amended: bool
) -> None:
    result = services_in_artifact("payments", sourceignore.encode())
    if not amended:
        assert result is None
        return
    assert result is not None
    text = result.decode()
    assert text.startswith(sourceignore.rstrip("\n"))
    spec = pathspec.GitIgnoreSpec.from_lines(text.splitlines())
    assert not spec.match_file("services/payments/deploy/overlays/prod/kustomization.yaml")
    # What it kept out before stays out (the reference layout's README, say).
    if sourceignore.startswith("/*"):
        assert spec.match_file("README.md")
