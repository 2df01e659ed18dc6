"""The ``flux wiring`` check: dependsOn targets, source paths and CRDs, on small and real trees."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal.changes.models import ChangeStatus, CheckRun
from portal.changes.store import get_change
from portal.cli import initialise
from portal.config import Settings
from portal.integrations.kubernetes import ORIGIN_ANNOTATION, PINNED_KUBERNETES_VERSION, Finding
from portal.review.decide import DecisionError, approve
from portal.review.flux_wiring import DEPENDS_RULE, KIND_RULE, PATH_RULE, find_flux_wiring
from portal.scaffold import jobs
from portal.scaffold.flux import flux_kustomizations
from portal.scaffold.runtime import ScaffoldRuntime
from tests.conftest import REPO, require_tool
from tests.databases import PAGES_ON_SQLITE
from tests.review.test_collisions import seed_tree
from tests.review.test_decide_race import REVIEWERS, load
from tests.scaffold.test_jobs import new_change

FLUX_EXAMPLE = REPO / "tests" / "data" / "flux" / "flux2-kustomize-helm-example"
ENVIRONMENTS = ["dev", "prod", "staging"]
SERVICE = "payments"


def obj(api_version: str, kind: str, name: str, origin: str) -> dict[str, Any]:
    annotations = {ORIGIN_ANNOTATION: f"path: {origin}\n"}
    metadata = {"name": name, "namespace": SERVICE, "annotations": annotations}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


DEPLOYMENT = obj("apps/v1", "Deployment", SERVICE, "deploy/base/deployment.yaml")
MONITOR = obj("monitoring.coreos.com/v1", "ServiceMonitor", SERVICE, "deploy/base/sm.yaml")


@pytest.fixture
def service_dir(tmp_path: Path) -> Path:
    """An exported ``services/payments`` folder with one overlay per environment."""
    return exported_service(tmp_path)


def exported_service(tmp_path: Path) -> Path:
    """Write ``services/payments`` with one (empty) overlay per environment under tmp_path."""
    folder = tmp_path / "services" / SERVICE
    for env in ENVIRONMENTS:
        overlay = folder / "deploy" / "overlays" / env
        overlay.mkdir(parents=True)
        (overlay / "kustomization.yaml").write_text("resources: [../../base]\n")
    return folder


def check(
    files: dict[str, bytes], service_dir: Path, kinds: list[dict[str, Any]] | None = None
) -> list[Finding]:
    built = {env: kinds if kinds is not None else [DEPLOYMENT, MONITOR] for env in ENVIRONMENTS}
    _, findings = find_flux_wiring(files, SERVICE, service_dir, built, PINNED_KUBERNETES_VERSION)
    return findings


def problems(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(finding.severity, finding.rule, finding.source) for finding in findings]


def without(files: dict[str, bytes], *paths: str) -> dict[str, bytes]:
    return {path: data for path, data in files.items() if path not in paths}


# Our own seed layout ----------------------------------------------------------------------


def test_the_seed_with_a_scaffolded_service_is_wired(service_dir: Path) -> None:
    subject, findings = find_flux_wiring(
        seed_tree(SERVICE),
        SERVICE,
        service_dir,
        {env: [DEPLOYMENT, MONITOR] for env in ENVIRONMENTS},
        PINNED_KUBERNETES_VERSION,
    )

    assert findings == []
    assert subject == "3 Flux Kustomizations of payments in dev, prod, staging"


# 1. dependsOn -----------------------------------------------------------------------------


def test_a_depends_on_target_the_cluster_lacks_is_an_error_with_its_line(
    service_dir: Path,
) -> None:
    files = seed_tree()
    files.update(flux_kustomizations(SERVICE, ["dev"], depends_on=["infrastructure", "infra"]))

    lines = files["clusters/dev/services/payments.yaml"].decode().splitlines()
    line = [text.strip() for text in lines].index("- name: infra") + 1

    (finding,) = check(files, service_dir)

    assert problems([finding]) == [("error", DEPENDS_RULE, "clusters/dev/services/payments.yaml")]
    assert finding.path == "spec.dependsOn[1].name"
    assert finding.message.startswith(f"clusters/dev/services/payments.yaml line {line}: ")
    assert "has no Kustomization flux-system/infra" in finding.message
    assert "Its Kustomizations in flux-system: flux-system, infrastructure, payments" in (
        finding.message
    )


def test_a_depends_on_target_is_looked_up_in_the_namespace_it_names(service_dir: Path) -> None:
    files = seed_tree(SERVICE)
    document = yaml.safe_load(files["clusters/dev/services/payments.yaml"])
    document["spec"]["dependsOn"] = [{"name": "infrastructure", "namespace": "other"}]
    files["clusters/dev/services/payments.yaml"] = yaml.safe_dump(document).encode()

    findings = check(files, service_dir)

    assert [(f.rule, f.source) for f in findings] == [
        (DEPENDS_RULE, "clusters/dev/services/payments.yaml")
    ]
    assert "has no Kustomization other/infrastructure" in findings[0].message


# 2. spec.path inside the source artifact -----------------------------------------------------


def test_a_path_excluded_by_sourceignore_is_an_error_naming_the_pattern(service_dir: Path) -> None:
    files = seed_tree(SERVICE)
    files[".sourceignore"] = b"# keep manifests only\n/*\n!/clusters/\n!/infrastructure/\n"

    findings = check(files, service_dir)

    assert problems(findings) == [
        ("error", PATH_RULE, f"clusters/{env}/services/payments.yaml") for env in ENVIRONMENTS
    ]
    assert "excluded from the source artifact by .sourceignore line 2 ('/*')" in (
        findings[0].message
    )
    # Re-including the service folder puts it back in the artifact.
    files[".sourceignore"] += b"!/services/\n"
    assert check(files, service_dir) == []


def test_a_path_that_is_not_in_the_tree_is_an_error(service_dir: Path) -> None:
    files = seed_tree(SERVICE)
    shutil.rmtree(service_dir / "deploy" / "overlays" / "prod")

    findings = check(files, service_dir)

    assert problems(findings) == [("error", PATH_RULE, "clusters/prod/services/payments.yaml")]
    assert "'./services/payments/deploy/overlays/prod' is not a folder of the repository" in (
        findings[0].message
    )


def test_a_path_in_another_source_cannot_be_proven_and_is_a_warning(service_dir: Path) -> None:
    files = seed_tree(SERVICE)
    document = yaml.safe_load(files["clusters/dev/services/payments.yaml"])
    document["spec"]["sourceRef"] = {"kind": "OCIRepository", "name": "payments-manifests"}
    files["clusters/dev/services/payments.yaml"] = yaml.safe_dump(document).encode()

    findings = check(files, service_dir)

    assert problems(findings) == [("warning", PATH_RULE, "clusters/dev/services/payments.yaml")]
    assert "read from OCIRepository payments-manifests" in findings[0].message
    assert "cannot prove" in findings[0].message


# 3. custom resource kinds --------------------------------------------------------------------


def test_a_custom_kind_nothing_installs_is_an_error_per_cluster(service_dir: Path) -> None:
    files = without(seed_tree(SERVICE), "infrastructure/base/monitoring/kube-prometheus-stack.yaml")

    findings = check(files, service_dir)

    assert problems(findings) == [
        ("error", KIND_RULE, "services/payments/deploy/base/sm.yaml") for _ in ENVIRONMENTS
    ]
    assert findings[0].object == "ServiceMonitor/payments"
    assert "ServiceMonitor (monitoring.coreos.com/v1) of the dev overlay" in findings[0].message


def test_a_crd_or_a_known_chart_the_cluster_applies_installs_the_kind(service_dir: Path) -> None:
    base = without(seed_tree(SERVICE), "infrastructure/base/monitoring/kube-prometheus-stack.yaml")
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {"group": "monitoring.coreos.com", "names": {"kind": "ServiceMonitor"}},
    }
    with_crd = {**base, "infrastructure/base/monitoring/kube-prometheus-stack.yaml": b""}
    with_crd["infrastructure/base/monitoring/kube-prometheus-stack.yaml"] = yaml.safe_dump(
        crd
    ).encode()
    assert check(with_crd, service_dir) == []

    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "crds", "namespace": "monitoring"},
        "spec": {"chart": {"spec": {"chart": "prometheus-operator-crds"}}},
    }
    with_chart = dict(base)
    with_chart["infrastructure/base/monitoring/kube-prometheus-stack.yaml"] = yaml.safe_dump(
        release
    ).encode()
    assert check(with_chart, service_dir) == []


def test_built_in_and_flux_kinds_need_no_crd(service_dir: Path) -> None:
    files = without(seed_tree(SERVICE), "infrastructure/base/monitoring/kube-prometheus-stack.yaml")
    release = obj("helm.toolkit.fluxcd.io/v2", "HelmRelease", "cache", "deploy/base/cache.yaml")
    policy = obj("policy/v1", "PodDisruptionBudget", SERVICE, "deploy/base/pdb.yaml")

    assert check(files, service_dir, [DEPLOYMENT, release, policy]) == []
    # A cluster Flux was never bootstrapped into has no Flux kinds.
    unbootstrapped = {p: d for p, d in files.items() if "/flux-system/" not in p}
    findings = check(unbootstrapped, service_dir, [release])
    assert [f.object for f in findings if f.rule == KIND_RULE] == ["HelmRelease/cache"] * 3


def test_a_kind_that_may_be_in_what_could_not_be_read_is_a_warning(service_dir: Path) -> None:
    monitoring = "infrastructure/base/monitoring/kube-prometheus-stack.yaml"
    files = without(seed_tree(SERVICE), monitoring)
    built = {"dev": [MONITOR]}

    # The CRD bundle may be in a file too large to read: not proven either way.
    _, findings = find_flux_wiring(
        files, SERVICE, service_dir, built, PINNED_KUBERNETES_VERSION, too_large=[monitoring]
    )
    assert problems(findings) == [("warning", KIND_RULE, "services/payments/deploy/base/sm.yaml")]
    assert f"could not be read: {monitoring} (larger than the portal reads)" in (
        findings[0].message
    )

    # A Kustomization of another source: what it applies cannot be read offline.
    document = yaml.safe_load(files["clusters/dev/infrastructure.yaml"])
    document["spec"]["sourceRef"] = {"kind": "OCIRepository", "name": "platform"}
    files["clusters/dev/infrastructure.yaml"] = yaml.safe_dump(document).encode()
    _, findings = find_flux_wiring(files, SERVICE, service_dir, built, PINNED_KUBERNETES_VERSION)
    assert problems(findings) == [("warning", KIND_RULE, "services/payments/deploy/base/sm.yaml")]
    assert "Kustomization infrastructure (OCIRepository source)" in findings[0].message


# Flux's reference layout ---------------------------------------------------------------------


def example_tree() -> dict[str, bytes]:
    return {
        path.relative_to(FLUX_EXAMPLE).as_posix(): path.read_bytes()
        for path in FLUX_EXAMPLE.rglob("*")
        if path.is_file() and path.name not in {"README.md", "LICENSE"}
    }


def test_flux_reference_layout_fails_for_each_of_the_three_reasons(service_dir: Path) -> None:
    files = example_tree()
    files.update(flux_kustomizations(SERVICE, ["staging"]))

    findings = check(files, service_dir)

    own = "clusters/staging/services/payments.yaml"
    assert problems(findings) == [
        ("error", DEPENDS_RULE, own),
        ("error", PATH_RULE, own),
        ("error", KIND_RULE, "services/payments/deploy/base/sm.yaml"),
    ]
    depends, path, kind = (finding.message for finding in findings)
    assert "has no Kustomization flux-system/infrastructure" in depends
    assert "apps, infra-configs, infra-controllers, payments" in depends
    assert "excluded from the source artifact by .sourceignore line 5 ('/*')" in path
    # The cluster's infrastructure is read through its ArtifactGenerator: cert-manager and
    # envoy-gateway, neither of which installs the Prometheus Operator's CRDs.
    assert "nothing the staging cluster applies installs it" in kind
    assert "unread offline" not in kind


# Through the real scaffold flow -----------------------------------------------------------


@pytest.fixture
def scaffold_runtime(
    settings: Settings, engine: Engine
) -> Iterator[Callable[[Path], tuple[ScaffoldRuntime, Settings]]]:
    """Start a scaffold runtime on a GitOps repository seeded from a given folder."""
    started: list[ScaffoldRuntime] = []

    def start(seed: Path) -> tuple[ScaffoldRuntime, Settings]:
        seeded = settings.model_copy(
            update={"gitops_seed_dir": seed, "catalog_paths": [str(REPO / "catalog")]}
        )
        initialise(seeded, gitops=True)
        started.append(ScaffoldRuntime(engine, seeded))
        return started[-1], seeded

    yield start
    for runtime in started:
        runtime.stop()


def scaffold(runtime: ScaffoldRuntime, name: str) -> tuple[str, dict[str, CheckRun]]:
    """Scaffold a fastapi-service through the job runner; return the change id and its runs."""
    context = runtime.context
    change = new_change(runtime, name)
    assert jobs.run_pending(context) == 1
    with Session(context.engine) as session:
        runs = session.exec(select(CheckRun).where(CheckRun.change_id == change.id)).all()
        done = get_change(session, change.id)
    assert done is not None and done.status is ChangeStatus.READY
    return change.id, {run.name: run for run in runs}


@PAGES_ON_SQLITE  # a flow through stores whose own tests run on both databases
def test_a_service_scaffolded_into_our_seed_is_wired(
    scaffold_runtime: Callable[[Path], tuple[ScaffoldRuntime, Settings]],
) -> None:
    require_tool("kubectl")
    runtime, _ = scaffold_runtime(REPO / "gitops-repo")

    _, runs = scaffold(runtime, "payments-api")

    wiring = runs["flux wiring"]
    assert wiring.status == "passed", wiring.findings
    # The 2 more: its chaos experiments in dev and staging (portal/scaffold/chaos.py).
    assert wiring.summary == (
        "3 Flux Kustomizations of payments-api and 2 more the change adds or edits"
        " in dev, prod, staging: no problems"
    )
    # Beside each Kustomization, the image policy its overlay's $imagepolicy marker names.
    repo = runtime.context.gitops()
    for env in ENVIRONMENTS:
        wired = yaml.safe_load_all(
            repo.read_file("scaffold/payments-api", f"clusters/{env}/services/payments-api.yaml")
        )
        kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in wired}
        assert kinds == {
            ("Kustomization", "payments-api"),
            ("ImageRepository", "payments-api"),
            ("ImagePolicy", f"payments-api-{env}"),
        }
        overlay = repo.read_file(
            "scaffold/payments-api",
            f"services/payments-api/deploy/overlays/{env}/kustomization.yaml",
        )
        assert f'"$imagepolicy": "flux-system:payments-api-{env}:tag"' in overlay.decode()


@PAGES_ON_SQLITE  # a flow through stores whose own tests run on both databases
def test_a_service_scaffolded_into_flux_reference_layout_cannot_be_approved_without_crds(
    scaffold_runtime: Callable[[Path], tuple[ScaffoldRuntime, Settings]], tmp_path: Path
) -> None:
    require_tool("kubectl")
    seed = tmp_path / "flux-seed"
    shutil.copytree(FLUX_EXAMPLE, seed)
    (seed / "README.md").unlink()
    runtime, settings = scaffold_runtime(seed)

    change_id, runs = scaffold(runtime, "podinfo-api")

    # The scaffold read the layout: it waits for infra-configs and amended .sourceignore
    # (tests/scaffold/test_layout.py). What it cannot fix is the cluster's: nothing there
    # installs the Prometheus Operator's CRDs its ServiceMonitor and SLO rules need.
    wiring = runs["flux wiring"]
    assert wiring.status == "failed"
    assert {f["rule"] for f in wiring.findings} == {KIND_RULE}
    assert all(f["severity"] == "error" for f in wiring.findings)
    assert {f["object"] for f in wiring.findings} == {
        "ServiceMonitor/podinfo-api",
        "PrometheusRule/podinfo-api-slos",
    }
    assert {("staging" in f["message"], "production" in f["message"]) for f in wiring.findings} == {
        (True, False),
        (False, True),
    }

    context = runtime.context
    with Session(context.engine) as session, pytest.raises(DecisionError) as refused:
        approve(session, load(session, change_id), REVIEWERS[0], context.gitops(), settings)
    assert "flux wiring" in refused.value.blocking
