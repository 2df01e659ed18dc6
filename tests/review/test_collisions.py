"""The ``collisions`` check: objects defined twice in one cluster build, on the real seed tree."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal.changes.models import ChangeStatus, CheckRun
from portal.changes.store import get_change
from portal.cli import initialise
from portal.config import Settings
from portal.cost.model import Prices
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.integrations.gitops_tree import TreeFiles
from portal.integrations.kubernetes import ORIGIN_ANNOTATION, Finding
from portal.review.checks import CheckStatus, run_manifest_checks
from portal.review.collisions import cluster_tree, find_collisions
from portal.review.flux_substitute import substituted, substitutions
from portal.scaffold.chaos import chaos_kustomizations
from portal.scaffold.flux import flux_kustomizations
from portal.scaffold.jobs import run_pending
from portal.scaffold.request import request_scaffold
from portal.scaffold.runtime import ScaffoldRuntime
from tests.conftest import REPO, require_tool
from tests.integrations.gitops_support import ANN, make_settings
from tests.review.test_checks import GOOD, owner_exists

SEED = REPO / "gitops-repo"
ENVIRONMENTS = ["dev", "prod", "staging"]


@pytest.fixture
def kubectl() -> Path:
    return require_tool("kubectl")


def seed_tree(*services: str) -> dict[str, bytes]:
    """The seed's cluster folders plus the portal's Flux Kustomizations of ``services``."""
    files = {
        path.relative_to(SEED).as_posix(): path.read_bytes()
        for folder in ("clusters", "infrastructure")
        for path in (SEED / folder).rglob("*")
        if path.is_file()
    }
    for service in services:
        files.update(flux_kustomizations(service, ENVIRONMENTS))
    return files


def namespace(name: str, origin: str = "deploy/base/namespace.yaml") -> dict[str, Any]:
    annotations = {ORIGIN_ANNOTATION: f"path: {origin}\n"}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "annotations": annotations},
    }


def errors(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(finding.object, finding.source) for finding in findings if finding.severity == "error"]


def test_the_seed_with_an_ordinary_service_has_no_collision(kubectl: Path) -> None:
    built = {env: [namespace("payments")] for env in ENVIRONMENTS}

    subject, findings = find_collisions(seed_tree("payments"), "payments", built, kubectl=kubectl)

    assert findings == []
    # Per cluster: the GitRepository, the root, infrastructure and service Kustomizations, the
    # ImageUpdateAutomation; the monitoring Namespace, 3 HelmRepositories, 3 HelmReleases and
    # 5 dashboard ConfigMaps; MLflow's Namespace, ServiceAccount, Deployment, Service and
    # NetworkPolicy; the NVIDIA device plugin's Namespace, HelmRepository and HelmRelease; the
    # service's Namespace (26 objects); in dev and staging, Chaos Mesh's Namespace,
    # HelmRepository and HelmRelease (3 more each).
    assert subject == "84 objects in the cluster builds of dev, prod, staging"


def test_a_service_named_flux_system_collides_with_the_root_kustomization(kubectl: Path) -> None:
    _, findings = find_collisions(seed_tree("flux-system"), "flux-system", {}, kubectl=kubectl)

    assert errors(findings) == [
        ("Kustomization/flux-system/flux-system", f"clusters/{env}/services/flux-system.yaml")
        for env in ENVIRONMENTS
    ]
    assert findings[0].rule == "object-collision"
    assert findings[0].message == (
        "Kustomization/flux-system/flux-system is defined twice in the dev cluster's root "
        "folder, in clusters/dev/flux-system/gotk-sync.yaml and "
        'clusters/dev/services/flux-system.yaml: Flux refuses the whole build ("may not add '
        'resource with an already registered id"), which stops every sync of the cluster'
    )


def test_a_service_named_infrastructure_collides_with_the_infrastructure_kustomization(
    kubectl: Path,
) -> None:
    _, findings = find_collisions(
        seed_tree("infrastructure"), "infrastructure", {}, kubectl=kubectl
    )

    assert errors(findings)[0] == (
        "Kustomization/flux-system/infrastructure",
        "clusters/dev/services/infrastructure.yaml",
    )
    assert "clusters/dev/infrastructure.yaml" in findings[0].message


def test_a_namespace_the_infrastructure_applies_collides_across_kustomizations(
    kubectl: Path,
) -> None:
    built = {"dev": [namespace("monitoring")]}

    _, findings = find_collisions(seed_tree("metrics"), "metrics", built, kubectl=kubectl)

    assert errors(findings) == [
        ("Namespace/monitoring", "services/metrics/deploy/base/namespace.yaml")
    ]
    assert findings[0].message == (
        "Namespace/monitoring is applied twice in the dev cluster, by Kustomization "
        "flux-system/infrastructure (infrastructure/base/monitoring/namespace.yaml) and by "
        "Kustomization flux-system/metrics (services/metrics/deploy/base/namespace.yaml): each "
        "overwrites the other, and pruning one deletes the other's object"
    )


def test_a_changed_infrastructure_is_built_again_not_read_from_the_kept_builds(
    kubectl: Path,
) -> None:
    built = {"dev": [namespace("monitoring")]}
    files = seed_tree("metrics")
    _, before = find_collisions(files, "metrics", built, kubectl=kubectl)
    assert errors(before) == [
        ("Namespace/monitoring", "services/metrics/deploy/base/namespace.yaml")
    ]
    path = "infrastructure/base/monitoring/namespace.yaml"
    files[path] = files[path].replace(b"name: monitoring", b"name: observability")

    _, after = find_collisions(files, "metrics", built, kubectl=kubectl)

    assert errors(after) == []


def test_two_services_chaos_experiments_are_named_by_their_substitution(kubectl: Path) -> None:
    """One experiments folder applied for two services makes two sets of objects."""
    files = seed_tree("payments", "orders")
    for service in ("payments", "orders"):
        files.update(chaos_kustomizations(service, "fastapi-service", ENVIRONMENTS))
    built = {env: [namespace("payments")] for env in ENVIRONMENTS}

    _, findings = find_collisions(files, "payments", built, kubectl=kubectl)

    assert errors(findings) == []
    # Two Kustomizations with the same SERVICE still apply the same objects twice.
    again = chaos_kustomizations("payments", "fastapi-service", ["dev"])
    text = again["clusters/dev/chaos/payments.yaml"]
    assert b"name: payments-chaos\n" in text
    files["clusters/dev/chaos/again.yaml"] = text.replace(
        b"name: payments-chaos\n", b"name: again\n"
    )
    _, findings = find_collisions(files, "payments", built, kubectl=kubectl)
    assert {finding.object for finding in findings} == {
        "PodChaos/payments/payments-pod-kill",
        "NetworkChaos/payments/payments-network-delay",
        "StressChaos/payments/payments-cpu-stress",
    }


def test_substitution_sets_names_defaults_and_respects_disabled() -> None:
    variables = {"SERVICE": "shop"}
    obj = {"kind": "PodChaos", "metadata": {"name": "${SERVICE}-kill", "namespace": "${NS:=x}"}}
    assert substituted(obj, variables)["metadata"] == {"name": "shop-kill", "namespace": "x"}
    unknown = {"kind": "X", "metadata": {"name": "${CLUSTER}-a"}}
    assert substituted(unknown, variables)["metadata"]["name"] == "${CLUSTER}-a"
    disabled = {
        "kind": "ConfigMap",
        "metadata": {
            "name": "${SERVICE}",
            "annotations": {"kustomize.toolkit.fluxcd.io/substitute": "disabled"},
        },
    }
    assert substituted(disabled, variables) is disabled
    spec = {"postBuild": {"substitute": {"SERVICE": "shop", "REPLICAS": 2}}}
    assert substitutions(spec) == {"SERVICE": "shop", "REPLICAS": "2"}
    assert substitutions({"postBuild": {"substituteFrom": []}}) == {}


@pytest.mark.parametrize("name", ["kube-system", "default", "kube-public", "flux-system"])
def test_a_service_namespace_named_like_a_system_namespace_is_an_error(
    kubectl: Path, name: str
) -> None:
    built = {"dev": [namespace(name)]}

    _, findings = find_collisions(seed_tree("sneaky"), "sneaky", built, kubectl=kubectl)

    assert (f"Namespace/{name}", "services/sneaky/deploy/base/namespace.yaml") in errors(findings)
    assert any("relabels the cluster's own namespace" in f.message for f in findings)


def test_a_target_namespace_moves_the_objects_it_applies(kubectl: Path) -> None:
    files = seed_tree()
    files["clusters/dev/extra.yaml"] = (
        b"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        b"metadata: {name: extra, namespace: flux-system}\n"
        b"spec: {path: ./infrastructure/dev, targetNamespace: elsewhere, interval: 1m,\n"
        b"  prune: true, sourceRef: {kind: GitRepository, name: flux-system}}\n"
    )

    _, findings = find_collisions(files, "none", {}, kubectl=kubectl)

    # Moved to another namespace the namespaced objects no longer collide; the Namespaces do.
    assert [obj for obj, _ in errors(findings)] == [
        "Namespace/chaos-mesh",
        "Namespace/mlflow",
        "Namespace/monitoring",
        "Namespace/nvidia-device-plugin",
    ]


def test_unreadable_files_and_broken_builds_are_findings(kubectl: Path) -> None:
    files = seed_tree()
    files["clusters/dev/broken.yaml"] = b"kind: [\n"
    del files["infrastructure/base/monitoring/tempo.yaml"]

    _, findings = find_collisions(files, "none", {}, too_large=["clusters/dev/huge.yaml"])

    messages = [finding.message for finding in findings]
    assert "clusters/dev/huge.yaml is larger than the portal reads" in messages[0]
    assert any(m.startswith("clusters/dev/broken.yaml cannot be read: YAML") for m in messages)
    assert any("infrastructure/dev, applied by Kustomization" in m for m in messages)


def test_a_tree_without_cluster_folders_cannot_be_checked() -> None:
    with pytest.raises(ValueError, match="no clusters/<env>/ folder"):
        find_collisions({"infrastructure/dev/kustomization.yaml": b"resources: []\n"}, "x", {})


def tree(files: dict[str, bytes]) -> TreeFiles:
    return TreeFiles("0" * 40, files)


def test_the_runner_fails_on_a_collision_and_errs_when_the_tree_cannot_be_read(
    kubectl: Path,
) -> None:
    def colliding() -> TreeFiles:
        return tree(seed_tree("good", "flux-system"))

    def unreadable() -> TreeFiles:
        raise OSError("the GitOps clone is gone")

    def clean() -> TreeFiles:
        return tree(seed_tree("good"))

    def collisions(load: Any) -> Any:
        results = run_manifest_checks(GOOD, ["dev"], owner_exists, Prices(), cluster_files=load)
        return next(result for result in results if result.name == "collisions")

    failed, broken, passed = collisions(colliding), collisions(unreadable), collisions(clean)

    assert failed.status == CheckStatus.FAILED
    assert failed.summary.endswith("3 errors (object-collision)")
    assert broken.status == CheckStatus.ERROR
    assert "the GitOps clone is gone" in broken.summary
    assert passed.status == CheckStatus.PASSED, passed.findings


def test_the_check_reads_the_change_commit_from_git(tmp_path: Path, kubectl: Path) -> None:
    repo = bootstrap_gitops(make_settings(tmp_path / "var"))
    sha = repo.create_branch("edit", flux_kustomizations("flux-system", ["dev"]), "edit", ANN)

    results = run_manifest_checks(
        GOOD, [], owner_exists, Prices(), cluster_files=partial(cluster_tree, repo, sha)
    )

    (result,) = [result for result in results if result.name == "collisions"]
    assert result.status == CheckStatus.FAILED
    assert [f.source for f in result.findings] == ["clusters/dev/services/flux-system.yaml"]


@pytest.fixture
def runtime(settings: Settings, engine: Engine) -> Iterator[ScaffoldRuntime]:
    initialise(settings.model_copy(update={"catalog_paths": [str(REPO / "catalog")]}), gitops=True)
    scaffold = ScaffoldRuntime(engine, settings)
    yield scaffold
    scaffold.stop()


def test_a_collision_arriving_through_an_edited_branch_fails_the_change(
    runtime: ScaffoldRuntime, kubectl: Path
) -> None:
    context = runtime.context
    with Session(context.engine) as session:
        change = request_scaffold(
            session,
            context.registry,
            context.gitops(),
            "fastapi-service",
            {"name": "edited", "owner": "platform-team", "description": "x"},
            "user:default/ada.lovelace",
        )
    # The branch arrives already pushed, edited so that its Kustomization is named like the
    # cluster's root one: the job checks what is on the branch.
    edited = flux_kustomizations("edited", ["dev"])["clusters/dev/services/edited.yaml"]
    edited = edited.replace(b"name: edited\n  namespace", b"name: flux-system\n  namespace")
    files = {"clusters/dev/services/edited.yaml": edited, "services/edited/README.md": b"x\n"}
    context.gitops().create_branch("scaffold/edited", files, "edit", ANN)

    assert run_pending(context) == 1

    with Session(context.engine) as session:
        runs = session.exec(select(CheckRun).where(CheckRun.change_id == change.id)).all()
        stored = {run.name: run for run in runs}
        done = get_change(session, change.id)
    assert done is not None and done.status is ChangeStatus.READY
    assert stored["collisions"].status == "failed"
    assert stored["collisions"].findings[0]["source"] == "clusters/dev/services/edited.yaml"
    assert stored["collisions"].findings[0]["object"] == "Kustomization/flux-system/flux-system"
