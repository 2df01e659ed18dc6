"""Chaos Mesh by Flux: installed in dev and staging only, experiments from git, never by hand.

The seed installs Chaos Mesh with a HelmRelease (infrastructure/base/chaos-mesh) in dev and
staging; the experiments of sre/chaos are in the seed with ``${SERVICE}`` for the service's
name, applied per service by a Flux Kustomization (clusters/<env>/chaos/<service>.yaml) that
substitutes it and waits for the infrastructure. The portal's ``flux wiring`` check accepts
such a Kustomization where Chaos Mesh is installed and refuses it in prod, which has no
chaos CRDs; the vendored chaos-mesh.org schemas validate what the experiments build to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations.kubernetes import PINNED_KUBERNETES_VERSION, Severity, kustomize_build
from portal.integrations.kubernetes_schemas import validate_objects
from portal.review.flux_wiring import CRD_CHARTS, KIND_RULE, find_flux_wiring
from tests.conftest import REPO, require_tool
from tests.review.test_collisions import seed_tree
from tests.review.test_flux_wiring import DEPLOYMENT, SERVICE, exported_service

SEED = REPO / "gitops-repo"
CHAOS = SEED / "infrastructure" / "base" / "chaos-mesh"
EXPERIMENTS = CHAOS / "experiments"
LIBRARY = REPO / "sre" / "chaos"
SCHEMAS = REPO / "portal" / "review" / "crd_schemas" / "chaos-mesh.org"
WITH_CHAOS = ("dev", "staging")
ENVIRONMENTS = (*WITH_CHAOS, "prod")

# The per-service Flux Kustomization the README tells a team to add (one per environment).
CHAOS_KUSTOMIZATION = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {service}-chaos
  namespace: flux-system
spec:
  interval: 1h
  path: ./infrastructure/base/chaos-mesh/experiments/{template}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  dependsOn:
    - name: infrastructure
    - name: {service}
  postBuild:
    substitute:
      SERVICE: {service}
"""


def kubectl() -> Path:
    return require_tool("kubectl")


def substituted(objects: list[dict[str, Any]], variables: dict[str, str]) -> list[dict[str, Any]]:
    """Apply Flux's postBuild substitution (``${NAME}``) to built objects."""
    text = yaml.safe_dump_all(objects)
    for name, value in variables.items():
        text = text.replace("${" + name + "}", value)
    assert "${" not in text, "a variable the Kustomization does not define"
    return [obj for obj in yaml.safe_load_all(text) if obj]


def built_experiments(template: str, service: str = SERVICE) -> list[dict[str, Any]]:
    objects = kustomize_build(EXPERIMENTS / template, kubectl=kubectl())
    return substituted(objects, {"SERVICE": service})


def chaos_tree(envs: tuple[str, ...], template: str = "fastapi-service") -> dict[str, bytes]:
    files = seed_tree(SERVICE)
    for env in envs:
        text = CHAOS_KUSTOMIZATION.format(service=SERVICE, template=template)
        files[f"clusters/{env}/chaos/{SERVICE}.yaml"] = text.encode()
    return files


def wiring(files: dict[str, bytes], tmp_path: Path) -> list[Any]:
    built = {env: [DEPLOYMENT] for env in ENVIRONMENTS}
    _, findings = find_flux_wiring(
        files,
        SERVICE,
        exported_service(tmp_path),
        built,
        PINNED_KUBERNETES_VERSION,
        base_files=seed_tree(SERVICE),
    )
    return findings


def test_every_template_of_the_library_has_its_flux_copy() -> None:
    library = sorted(path.name for path in LIBRARY.iterdir() if path.is_dir())
    assert library and sorted(p.name for p in EXPERIMENTS.iterdir()) == library


@pytest.mark.parametrize(
    "experiment", sorted(LIBRARY.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_the_flux_copy_is_the_library_with_the_service_substituted(experiment: Path) -> None:
    # One source of truth: the copy must say exactly what sre/chaos says.
    copy = EXPERIMENTS / experiment.parent.name / experiment.name
    expected = yaml.safe_load(experiment.read_text().replace("SERVICE", "svc-x"))
    assert yaml.safe_load(copy.read_text().replace("${SERVICE}", "svc-x")) == expected
    listed = yaml.safe_load((copy.parent / "kustomization.yaml").read_text())["resources"]
    assert experiment.name in listed


@pytest.mark.integration
@pytest.mark.parametrize("template", sorted(p.name for p in LIBRARY.iterdir() if p.is_dir()))
def test_experiments_build_and_pass_the_vendored_schemas(template: str) -> None:
    objects = built_experiments(template, "air-quality")
    assert {obj["kind"] for obj in objects} == {"PodChaos", "NetworkChaos", "StressChaos"}
    for obj in objects:
        assert obj["metadata"]["namespace"] == "air-quality"
        assert obj["spec"]["selector"]["namespaces"] == ["air-quality"]
        assert obj["spec"]["selector"]["labelSelectors"] == {
            "app.kubernetes.io/name": "air-quality"
        }
    assert validate_objects(objects, PINNED_KUBERNETES_VERSION) == []


@pytest.mark.integration
def test_the_schemas_refuse_a_broken_experiment() -> None:
    objects = {obj["kind"]: obj for obj in built_experiments("fastapi-service")}
    objects["PodChaos"]["spec"]["action"] = "pod-explode"
    objects["NetworkChaos"]["spec"]["delay"]["latancy"] = "1s"
    findings = validate_objects(list(objects.values()), PINNED_KUBERNETES_VERSION)
    assert {finding.object.split("/")[0] for finding in findings} == {
        "PodChaos",
        "NetworkChaos",
    }
    assert any("latancy" in finding.path for finding in findings)
    assert any("pod-explode" in finding.message for finding in findings)


def test_the_vendored_schemas_carry_their_license_and_provenance() -> None:
    names = sorted(path.name for path in SCHEMAS.glob("*.json"))
    assert names == [
        "networkchaos_v1alpha1.json",
        "podchaos_v1alpha1.json",
        "stresschaos_v1alpha1.json",
    ]
    assert "Apache License" in (SCHEMAS / "LICENSE").read_text()
    readme = (SCHEMAS / "README.md").read_text()
    assert "chart-2.8.3" in readme and "Apache-2.0" in readme
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        assert set(schema["properties"]) >= {"apiVersion", "kind", "metadata", "spec"}


@pytest.mark.integration
def test_chaos_mesh_is_installed_in_dev_and_staging_only() -> None:
    for env in ENVIRONMENTS:
        objects = kustomize_build(SEED / "infrastructure" / env, kubectl=kubectl())
        releases = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "HelmRelease"}
        assert ("chaos-mesh" in releases) == (env in WITH_CHAOS), env
    objects = kustomize_build(CHAOS, kubectl=kubectl())
    assert validate_objects(objects, PINNED_KUBERNETES_VERSION) == []
    by_kind = {obj["kind"]: obj for obj in objects}
    assert by_kind["HelmRepository"]["spec"]["url"] == "https://charts.chaos-mesh.org"
    chart = by_kind["HelmRelease"]["spec"]["chart"]["spec"]
    # Pinned exactly, to the version the vendored schemas come from.
    assert chart["version"] == "2.8.3" and chart["chart"] == "chaos-mesh"
    assert chart["sourceRef"] == {"kind": "HelmRepository", "name": "chaos-mesh"}
    values = by_kind["HelmRelease"]["spec"]["values"]
    assert values["dashboard"]["create"] is False  # experiments come from git only
    assert values["chaosDaemon"]["runtime"] == "containerd"
    assert CRD_CHARTS[chart["chart"]] == "chaos-mesh.org"


def test_flux_wiring_accepts_experiments_where_chaos_mesh_runs(tmp_path: Path) -> None:
    assert wiring(chaos_tree(WITH_CHAOS), tmp_path) == []


def test_flux_wiring_refuses_a_chaos_kustomization_waiting_on_a_missing_service(
    tmp_path: Path,
) -> None:
    # dependsOn the service: without it the experiments would start in an empty namespace.
    files = chaos_tree(("dev",))
    files["clusters/dev/chaos/payments.yaml"] = files["clusters/dev/chaos/payments.yaml"].replace(
        b"- name: payments", b"- name: payment"
    )
    findings = wiring(files, tmp_path)
    assert [f.path for f in findings] == ["spec.dependsOn[1].name"]


def test_flux_wiring_refuses_an_experiment_in_prod(tmp_path: Path) -> None:
    findings = wiring(chaos_tree(ENVIRONMENTS), tmp_path)
    refused = [f for f in findings if f.rule == KIND_RULE]
    assert {f.object.split("/")[0] for f in refused} == {"PodChaos", "NetworkChaos", "StressChaos"}
    assert all(f.severity == Severity.ERROR for f in refused)
    assert all("prod cluster" in f.message for f in refused)
    assert [f for f in findings if f.rule != KIND_RULE] == []


def test_flux_wiring_refuses_experiments_once_chaos_mesh_is_removed(tmp_path: Path) -> None:
    files = chaos_tree(("dev",))
    path = "infrastructure/dev/kustomization.yaml"
    document = yaml.safe_load(files[path])
    document["resources"].remove("../base/chaos-mesh")
    files[path] = yaml.safe_dump(document).encode()
    refused = {f.object.split("/")[0] for f in wiring(files, tmp_path) if f.rule == KIND_RULE}
    assert refused == {"PodChaos", "NetworkChaos", "StressChaos"}
