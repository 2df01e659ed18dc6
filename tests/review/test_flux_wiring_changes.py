"""The ``flux wiring`` check on what a change adds or edits anywhere under ``clusters/``.

Given the base tree, every Flux Kustomization the change adds or edits must pass the three
proofs whatever its path, and every other object it adds to a cluster folder (a HelmRelease,
say) must be of an installed kind; what the change leaves as it was is not reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.integrations.kubernetes import PINNED_KUBERNETES_VERSION, Finding
from portal.review.checks import CheckStatus, CheckTools
from portal.review.flux_helm import HELM_SOURCE_RULE
from portal.review.flux_reach import REACH_RULE
from portal.review.flux_wiring import DEPENDS_RULE, KIND_RULE, PATH_RULE, find_flux_wiring
from portal.scaffold.flux import flux_kustomizations
from portal.scaffold.jobs import check_commit
from tests.conftest import require_tool
from tests.integrations.gitops_support import ANN, make_settings
from tests.review.test_checks import GOOD, owner_exists
from tests.review.test_collisions import seed_tree
from tests.review.test_flux_wiring import (
    DEPLOYMENT,
    ENVIRONMENTS,
    SERVICE,
    example_tree,
    exported_service,
    problems,
    without,
)

MONITORING = "infrastructure/base/monitoring/kube-prometheus-stack.yaml"


@pytest.fixture
def service_dir(tmp_path: Path) -> Path:
    """An exported ``services/payments`` folder with one overlay per environment."""
    return exported_service(tmp_path)


REDIS_REPOSITORY = {
    "apiVersion": "source.toolkit.fluxcd.io/v1",
    "kind": "HelmRepository",
    "metadata": {"name": "bitnami", "namespace": "redis"},
    "spec": {"url": "oci://registry-1.docker.io/bitnamicharts", "type": "oci"},
}


def helm_release(
    name: str, namespace: str, *, source: str = "bitnami", source_namespace: str | None = None
) -> dict[str, Any]:
    reference = {"kind": "HelmRepository", "name": source}
    if source_namespace:
        reference["namespace"] = source_namespace
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"chart": {"spec": {"chart": name, "sourceRef": reference}}},
    }


def kustomization(name: str, path: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {
            "interval": "10m",
            "path": path,
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            **spec,
        },
    }


def dump(*objects: dict[str, Any]) -> bytes:
    return yaml.safe_dump_all(objects, sort_keys=False).encode()


def check(
    files: dict[str, bytes], base: dict[str, bytes] | None, service_dir: Path
) -> tuple[str, list[Finding]]:
    built = {env: [DEPLOYMENT] for env in ENVIRONMENTS}
    return find_flux_wiring(
        files, SERVICE, service_dir, built, PINNED_KUBERNETES_VERSION, base_files=base
    )


def apps_tree(base: dict[str, bytes]) -> dict[str, bytes]:
    """The base plus an ``apps`` Kustomization in dev applying ``apps/dev``."""
    files = dict(base)
    files["clusters/dev/apps.yaml"] = dump(
        kustomization("apps", "./apps/dev", dependsOn=[{"name": "infrastructure"}])
    )
    files["apps/dev/configmap.yaml"] = dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "a"}}
    )
    return files


def test_a_kustomization_outside_the_service_the_change_adds_is_proven(
    service_dir: Path,
) -> None:
    base = seed_tree(SERVICE)
    good = apps_tree(base)
    subject, findings = check(good, base, service_dir)
    assert findings == []
    assert subject == (
        "3 Flux Kustomizations of payments and 1 more the change adds or edits in dev, prod, "
        "staging"
    )

    broken = apps_tree(base)
    broken["clusters/dev/apps.yaml"] = dump(
        kustomization("apps", "./apps/qa", dependsOn=[{"name": "infra"}])
    )
    _, findings = check(broken, base, service_dir)
    assert problems(findings) == [
        ("error", DEPENDS_RULE, "clusters/dev/apps.yaml"),
        ("error", PATH_RULE, "clusters/dev/apps.yaml"),
    ]
    assert "has no Kustomization flux-system/infra" in findings[0].message
    assert "spec.path './apps/qa' is not a folder of the repository" in findings[1].message
    # Without the base the change cannot be told apart: the service's own wiring only.
    assert check(broken, None, service_dir)[1] == []


def test_an_added_kustomization_excluded_by_sourceignore_fails(service_dir: Path) -> None:
    base = seed_tree(SERVICE)
    base[".sourceignore"] = b"/apps/\n"
    files = apps_tree(base)

    _, findings = check(files, base, service_dir)

    assert problems(findings) == [("error", PATH_RULE, "clusters/dev/apps.yaml")]
    assert ".sourceignore line 1 ('/apps/')" in findings[0].message


def test_kinds_an_added_kustomization_applies_must_be_installed(service_dir: Path) -> None:
    base = without(seed_tree(SERVICE), MONITORING)
    files = apps_tree(base)
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "apps", "namespace": "apps"},
    }
    files["apps/dev/rules.yaml"] = dump(rule)

    _, findings = check(files, base, service_dir)

    assert problems(findings) == [("error", KIND_RULE, "apps/dev/rules.yaml")]
    assert findings[0].object == "PrometheusRule/apps"
    assert "applied by Kustomization/flux-system/apps (clusters/dev/apps.yaml)" in (
        findings[0].message
    )
    # The same Kustomization unchanged from the base is not the change's to answer for.
    assert check(files, files, service_dir)[1] == []


def test_an_edit_to_an_existing_kustomization_is_proven(service_dir: Path) -> None:
    base = seed_tree(SERVICE)
    files = dict(base)
    document = yaml.safe_load(files["clusters/prod/infrastructure.yaml"])
    document["spec"]["path"] = "./infrastructure/production"
    files["clusters/prod/infrastructure.yaml"] = yaml.safe_dump(document).encode()

    _, findings = check(files, base, service_dir)

    assert problems(findings) == [("error", PATH_RULE, "clusters/prod/infrastructure.yaml")]
    assert "'./infrastructure/production' is not a folder" in findings[0].message


def test_a_helm_release_file_added_to_a_cluster_folder_needs_installed_kinds(
    service_dir: Path,
) -> None:
    base = without(seed_tree(SERVICE), MONITORING)
    release = helm_release("redis", "redis", source_namespace="redis")
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "redis", "namespace": "redis"},
    }
    files = {**base, "clusters/staging/redis.yaml": dump(release, REDIS_REPOSITORY)}
    assert check(files, base, service_dir)[1] == []  # Flux kinds, the cluster bootstrapped

    files["clusters/staging/redis.yaml"] = dump(release, REDIS_REPOSITORY, monitor)
    _, findings = check(files, base, service_dir)
    assert problems(findings) == [("error", KIND_RULE, "clusters/staging/redis.yaml")]
    assert "ServiceMonitor (monitoring.coreos.com/v1) in the staging cluster's folder" in (
        findings[0].message
    )


def test_a_helm_release_needs_its_depends_on_targets_and_chart_source_in_the_cluster(
    service_dir: Path,
) -> None:
    base = seed_tree(SERVICE)
    # Both found through the infrastructure Kustomization: infrastructure/base/monitoring.
    grafana = helm_release("grafana", "monitoring", source="grafana")
    grafana["spec"]["dependsOn"] = [{"name": "kube-prometheus-stack"}]
    files = {**base, "clusters/dev/grafana.yaml": dump(grafana)}
    assert check(files, base, service_dir)[1] == []

    grafana["spec"]["dependsOn"].append({"name": "postgres", "namespace": "databases"})
    grafana["spec"]["chart"]["spec"]["sourceRef"]["name"] = "grafana-charts"
    files["clusters/dev/grafana.yaml"] = dump(grafana)
    _, findings = check(files, base, service_dir)

    assert problems(findings) == [
        ("error", DEPENDS_RULE, "clusters/dev/grafana.yaml"),
        ("error", HELM_SOURCE_RULE, "clusters/dev/grafana.yaml"),
    ]
    depends, source = findings
    lines = files["clusters/dev/grafana.yaml"].decode().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "namespace: databases" in text) - 1
    assert depends.message.startswith(f"clusters/dev/grafana.yaml line {line}: ")
    assert (depends.object, depends.path) == (
        "HelmRelease/monitoring/grafana",
        "spec.dependsOn[1].name",
    )
    assert "nothing the dev cluster applies defines HelmRelease databases/postgres" in (
        depends.message
    )
    assert "HelmRepository monitoring/grafana-charts is not defined" in source.message
    assert source.path == "spec.chart.spec.sourceRef"

    del grafana["spec"]["chart"], grafana["spec"]["dependsOn"]
    files["clusters/dev/grafana.yaml"] = dump(grafana)
    (finding,) = check(files, base, service_dir)[1]
    assert finding.rule == HELM_SOURCE_RULE
    assert "names no chart source" in finding.message


def test_an_external_artifact_path_is_proven_through_its_artifact_generator(
    service_dir: Path,
) -> None:
    base = example_tree()
    files = without(base, "apps/staging/kustomization.yaml", "apps/staging/podinfo-values.yaml")
    document = yaml.safe_load(files["clusters/staging/apps.yaml"])
    document["spec"]["dependsOn"] = [{"name": "infra-configs"}, {"name": "databases"}]
    files["clusters/staging/apps.yaml"] = yaml.safe_dump(document).encode()

    _, findings = check(files, base, service_dir)

    assert problems(findings) == [
        ("error", DEPENDS_RULE, "clusters/staging/apps.yaml"),
        ("error", PATH_RULE, "clusters/staging/apps.yaml"),
    ]
    assert "has no Kustomization flux-system/databases" in findings[0].message
    assert (
        "spec.path './staging' (./apps/staging of the repository, through ExternalArtifact "
        "apps) is not a folder of the repository"
    ) in findings[1].message


def test_the_check_stage_compares_the_change_commit_with_its_base(tmp_path: Path) -> None:
    """Through ``check_commit``: the base is the commit's parent on main, read from git."""
    kubectl = require_tool("kubectl")
    repo = bootstrap_gitops(make_settings(tmp_path / "var"))
    files = {
        f"services/good/{path.relative_to(GOOD).as_posix()}": path.read_bytes()
        for path in GOOD.rglob("*")
        if path.is_file()
    }
    files.update(flux_kustomizations("good", ["dev"]))
    files["clusters/dev/apps.yaml"] = dump(
        kustomization("apps", "./apps/dev", dependsOn=[{"name": "infra"}])
    )
    files["clusters/qa/apps.yaml"] = dump(kustomization("apps", "./apps/qa"))
    sha = repo.create_branch("edit", files, "edit", ANN)

    results = check_commit(
        repo, sha, "good", ["dev"], owner_exists, CheckTools(kubectl=kubectl), tmp_path / "work"
    )

    (wiring,) = [result for result in results if result.name == "flux wiring"]
    assert wiring.status == CheckStatus.FAILED
    assert problems(wiring.findings) == [
        ("error", DEPENDS_RULE, "clusters/dev/apps.yaml"),
        ("error", PATH_RULE, "clusters/dev/apps.yaml"),
        ("error", PATH_RULE, "clusters/qa/apps.yaml"),
        ("error", REACH_RULE, "clusters/qa/apps.yaml"),
    ]
    assert wiring.summary.startswith(
        "1 Flux Kustomization of good and 2 more the change adds or edits in dev, prod, qa, staging"
    )
