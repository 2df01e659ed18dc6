"""The ``flux wiring`` check calls out a cluster file no Flux instance applies.

A file is applied when the cluster's sync Kustomization (``clusters/<env>/flux-system/``)
or a Kustomization it applies builds a folder that reaches it: not when the cluster was
never bootstrapped, the file is outside every such path, a ``kustomization.yaml`` on the way
leaves it out, or ``.sourceignore`` drops it from the artifact.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from portal.integrations.kubernetes import PINNED_KUBERNETES_VERSION, Finding
from portal.review.flux_reach import REACH_RULE
from portal.review.flux_wiring import find_flux_wiring
from portal.scaffold.flux import flux_kustomizations
from tests.review.test_collisions import seed_tree
from tests.review.test_flux_wiring import DEPLOYMENT, SERVICE, exported_service, problems

OWN_DEV = "clusters/dev/services/payments.yaml"
SYNC_DEV = "clusters/dev/flux-system/gotk-sync.yaml"


@pytest.fixture
def service_dir(tmp_path: Path) -> Path:
    """An exported ``services/payments`` folder with an overlay for dev, prod, staging, qa."""
    folder = exported_service(tmp_path)
    overlay = folder / "deploy" / "overlays" / "qa"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources: [../../base]\n")
    return folder


def check(
    files: dict[str, bytes], service_dir: Path, base: dict[str, bytes] | None = None
) -> list[Finding]:
    built = {"dev": [DEPLOYMENT]}
    _, findings = find_flux_wiring(
        files, SERVICE, service_dir, built, PINNED_KUBERNETES_VERSION, base_files=base
    )
    return findings


def with_sync(files: dict[str, bytes], path: str, **source: str) -> dict[str, bytes]:
    """Set the dev cluster's sync Kustomization's ``spec.path`` (and source)."""
    documents = list(yaml.safe_load_all(files[SYNC_DEV]))
    documents[1]["spec"]["path"] = path
    documents[1]["spec"]["sourceRef"].update(source)
    return {**files, SYNC_DEV: yaml.safe_dump_all(documents).encode()}


def test_a_cluster_folder_without_flux_system_is_read_by_no_flux(service_dir: Path) -> None:
    files = seed_tree(SERVICE)
    files.update(flux_kustomizations(SERVICE, ["qa"], depends_on=[]))

    findings = check(files, service_dir)

    own = "clusters/qa/services/payments.yaml"
    assert problems(findings) == [("error", REACH_RULE, own)]
    assert findings[0].message == (
        f"{own}: no Flux instance applies this file: clusters/qa/ has no flux-system/ folder, "
        "so no Flux instance was bootstrapped to read it (flux bootstrap "
        "--path=clusters/qa writes one), and no Kustomization of another cluster applies it"
    )
    # Bootstrapping qa (its sync objects, as for dev) puts the file in reach.
    sync = files[SYNC_DEV].replace(b"./clusters/dev", b"./clusters/qa")
    files["clusters/qa/flux-system/gotk-sync.yaml"] = sync
    assert check(files, service_dir) == []


def test_a_file_the_folders_kustomization_yaml_does_not_list_is_not_applied(
    service_dir: Path,
) -> None:
    files = seed_tree(SERVICE)
    files["clusters/dev/services/kustomization.yaml"] = b"resources:\n  - other.yaml\n"

    findings = check(files, service_dir)

    assert problems(findings) == [("error", REACH_RULE, OWN_DEV)]
    assert "clusters/dev/services/kustomization.yaml does not list it" in findings[0].message
    assert "generates a kustomization.yaml only for a folder without one" in findings[0].message
    files["clusters/dev/services/kustomization.yaml"] += b"  - payments.yaml\n"
    assert check(files, service_dir) == []


def test_a_nested_folder_with_its_own_kustomization_yaml_is_built_by_it(
    service_dir: Path,
) -> None:
    base = seed_tree(SERVICE)
    files = dict(base)
    # Flux's generated kustomization.yaml for clusters/dev/ takes extra/ as one resource.
    files["clusters/dev/extra/kustomization.yaml"] = b"resources: [listed.yaml]\n"
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "x"}}
    for name in ("listed", "forgotten"):
        document = {**configmap, "metadata": {"name": name, "namespace": "x"}}
        files[f"clusters/dev/extra/{name}.yaml"] = yaml.safe_dump(document).encode()

    findings = check(files, service_dir, base)

    assert problems(findings) == [("error", REACH_RULE, "clusters/dev/extra/forgotten.yaml")]
    assert "clusters/dev/extra/kustomization.yaml does not list it" in findings[0].message


def test_a_file_outside_the_sync_path_is_not_applied_unless_a_kustomization_reaches_it(
    service_dir: Path,
) -> None:
    files = with_sync(seed_tree(SERVICE), "./clusters/dev/flux-system")

    findings = check(files, service_dir)

    assert problems(findings) == [("error", REACH_RULE, OWN_DEV)]
    assert "outside the spec.path of every Kustomization that reads the dev cluster" in (
        findings[0].message
    )
    assert "(its sync applies ./clusters/dev/flux-system)" in findings[0].message

    services = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "services", "namespace": "flux-system"},
        "spec": {
            "path": "./clusters/dev/services",
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        },
    }
    files["clusters/dev/flux-system/services.yaml"] = yaml.safe_dump(services).encode()
    # Not yet listed in flux-system/kustomization.yaml: the sync does not apply it.
    assert problems(check(files, service_dir)) == [("error", REACH_RULE, OWN_DEV)]
    files["clusters/dev/flux-system/kustomization.yaml"] += b"  - services.yaml\n"
    assert check(files, service_dir) == []


def test_a_cluster_file_sourceignore_drops_is_not_applied(service_dir: Path) -> None:
    files = seed_tree(SERVICE)
    files[".sourceignore"] = b"# drafts\n/clusters/dev/services/\n"

    findings = check(files, service_dir)

    assert problems(findings) == [("error", REACH_RULE, OWN_DEV)]
    assert "by .sourceignore line 2 ('/clusters/dev/services/')" in findings[0].message


def test_a_sync_from_another_source_cannot_be_proven(service_dir: Path) -> None:
    files = with_sync(seed_tree(SERVICE), "./clusters/dev", kind="OCIRepository")

    findings = check(files, service_dir)

    assert problems(findings) == [("warning", REACH_RULE, OWN_DEV)]
    assert "reads another source" in findings[0].message


def test_every_file_the_change_adds_to_a_cluster_folder_must_be_applied(
    service_dir: Path,
) -> None:
    base = seed_tree(SERVICE)
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "redis", "namespace": "redis"},
    }
    files = {**base, "clusters/qa/redis.yaml": yaml.safe_dump(release).encode()}

    findings = check(files, service_dir, base)

    assert [(f.rule, f.source) for f in findings if f.rule == REACH_RULE] == [
        (REACH_RULE, "clusters/qa/redis.yaml")
    ]
    # A file the base had already, unchanged, is not the change's to answer for.
    assert [f.rule for f in check(files, service_dir, files)] == []


def test_a_flux_system_folder_whose_build_has_no_sync_kustomization(service_dir: Path) -> None:
    files = seed_tree(SERVICE)
    # gotk-sync.yaml left out of what `flux bootstrap` applies for the dev cluster.
    files["clusters/dev/flux-system/kustomization.yaml"] = b"resources: []\n"

    findings = check(files, service_dir)

    assert problems(findings) == [("error", REACH_RULE, OWN_DEV)]
    assert "the build of clusters/dev/flux-system/ (what flux bootstrap applies) has no " in (
        findings[0].message
    )
