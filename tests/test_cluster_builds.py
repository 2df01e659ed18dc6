"""Each seed cluster as Flux builds it, every object schema-checked.

Flux applies ``clusters/<env>`` with the kustomization kustomize-controller generates for
a folder without one (every manifest below it; a sub-folder with its own kustomization is
built by that one), then each Flux Kustomization it finds there (and in what those apply)
from the same repository, with its ``postBuild`` variables substituted. The objects of
all of those builds, Flux's own included, must pass the schema check the review runs:
built-in kinds strictly for the pinned Kubernetes version, custom resources against the
vendored CRD schemas (a kind without a schema fails here, it is not a warning).
"""

from __future__ import annotations

import posixpath
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.changes.environments import cluster_folders
from portal.integrations.kubernetes import object_ref
from portal.integrations.kubernetes_schemas import validate_objects
from portal.review.flux_substitute import VARIABLE, substitutions
from tests.conftest import REPO, require_tool

SEED = REPO / "gitops-repo"
ENVIRONMENTS = cluster_folders(str(path.relative_to(SEED)) for path in SEED.rglob("*"))
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io"

pytestmark = pytest.mark.integration


def has_kustomization(folder: Path) -> bool:
    return any((folder / name).is_file() for name in KUSTOMIZATION_FILES)


def generated_resources(folder: Path) -> list[str]:
    """What kustomize-controller's generated kustomization lists for ``folder``."""
    resources: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            if has_kustomization(entry):
                resources.append(entry.name)
            else:
                resources += [f"{entry.name}/{inner}" for inner in generated_resources(entry)]
        elif entry.suffix in (".yaml", ".yml") and entry.name not in KUSTOMIZATION_FILES:
            resources.append(entry.name)
    return resources


def flux_build(root: Path, path: str) -> list[dict[str, Any]]:
    """Build ``path`` of the repository copy ``root`` as kustomize-controller does."""
    folder = root / path
    assert folder.is_dir(), f"{path} is not a folder of the repository"
    if not has_kustomization(folder):
        generated = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": generated_resources(folder),
        }
        (folder / "kustomization.yaml").write_text(yaml.safe_dump(generated), encoding="utf-8")
        if not generated["resources"]:
            return []  # an empty folder (a cluster's services/ before the first scaffold)
    done = subprocess.run(
        [str(require_tool("kubectl")), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{path} does not build as Flux builds it: {done.stderr}"
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


def substituted(objects: list[dict[str, Any]], spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flux's postBuild substitution, over the whole text: inline variables, else the default.

    Else empty: the seed's ``substituteFrom`` ConfigMap is optional, and one that does not
    exist sets nothing. Variables are matched with the review's own pattern.
    """
    variables = substitutions(spec)
    if not variables and not (spec.get("postBuild") or {}).get("substituteFrom"):
        return objects
    text = yaml.safe_dump_all(objects, sort_keys=False)
    text = VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(2) or ""), text)
    return [obj for obj in yaml.safe_load_all(text) if obj]


def cluster_objects(root: Path, env: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (what applies it, object) for everything Flux applies to ``env``'s cluster."""
    pending: list[tuple[str, str, Mapping[str, Any]]] = [
        (f"clusters/{env}", "the root Kustomization", {})
    ]
    built: set[str] = set()
    while pending:
        path, applier, spec = pending.pop(0)
        if path in built:
            continue
        built.add(path)
        for obj in substituted(flux_build(root, path), spec):
            yield applier, obj
            group = str(obj.get("apiVersion", "")).rpartition("/")[0]
            if group != FLUX_KUSTOMIZATION or obj.get("kind") != "Kustomization":
                continue
            inner = obj.get("spec") or {}
            if (inner.get("sourceRef") or {}).get("name") != "flux-system":
                continue  # another repository's folder
            target = posixpath.normpath(str(inner.get("path") or "."))
            pending.append((target, object_ref(obj), inner))


@pytest.fixture(scope="module")
def seed_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the seed: the generated kustomizations are written into it, never the seed."""
    root = tmp_path_factory.mktemp("seed") / "gitops-repo"
    shutil.copytree(SEED, root)
    return root


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_object_flux_applies_to_the_cluster_passes_the_schemas(
    seed_copy: Path, env: str
) -> None:
    objects = list(cluster_objects(seed_copy, env))
    appliers = {applier for applier, _obj in objects}
    # The root applies the cluster's Flux objects, and they apply the infrastructure.
    assert {"the root Kustomization", "Kustomization/flux-system/infrastructure"} <= appliers
    kinds = {str(obj.get("kind")) for _applier, obj in objects}
    assert {"GitRepository", "Kustomization", "HelmRelease", "ImageUpdateAutomation"} <= kinds
    assert "${" not in yaml.safe_dump_all([obj for _a, obj in objects])  # all substituted
    findings = validate_objects(obj for _applier, obj in objects)
    assert [f"{f.object} ({f.source}): {f.rule}: {f.message}" for f in findings] == []


# README "Running the portal on Kubernetes", "Wiring it into a cluster", steps 1 and 2.
PORTAL_KUSTOMIZATION = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: portal
  namespace: flux-system
spec:
  dependsOn:
    - name: infrastructure
  interval: 10m0s
  path: ./infrastructure/portal/{env}
  prune: true
  wait: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_with_the_portal_wired_in_as_the_readme_says_every_object_passes(
    tmp_path: Path, env: str
) -> None:
    root = tmp_path / "gitops-repo"
    shutil.copytree(SEED, root)
    infrastructure = root / "infrastructure" / env / "kustomization.yaml"
    kustomization = yaml.safe_load(infrastructure.read_text(encoding="utf-8"))
    kustomization["resources"].append("../base/cloudnative-pg")
    infrastructure.write_text(yaml.safe_dump(kustomization, sort_keys=False), encoding="utf-8")
    portal = PORTAL_KUSTOMIZATION.format(env=env)
    (root / "clusters" / env / "portal.yaml").write_text(portal, encoding="utf-8")

    objects = list(cluster_objects(root, env))
    by_portal = [obj for applier, obj in objects if applier == "Kustomization/flux-system/portal"]
    assert {"Deployment", "HorizontalPodAutoscaler", "Ingress"} <= {o["kind"] for o in by_portal}
    findings = validate_objects(obj for _applier, obj in objects)
    assert [f"{f.object} ({f.source}): {f.rule}: {f.message}" for f in findings] == []


def test_a_folder_flux_would_refuse_fails_here(tmp_path: Path) -> None:
    """Not vacuous: a wrong field two folders deep, taken by the generated build, fails."""
    root = tmp_path / "gitops-repo"
    shutil.copytree(SEED, root)
    broken = root / "clusters" / ENVIRONMENTS[0] / "broken" / "deeper"
    broken.mkdir(parents=True)
    (broken / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken, namespace: default}\n"
        "data: {replicas: 3}\n---\n"
        "apiVersion: widgets.example.com/v1\nkind: Widget\n"
        "metadata: {name: w, namespace: default}\n",
        encoding="utf-8",
    )
    objects = [obj for _applier, obj in cluster_objects(root, ENVIRONMENTS[0])]
    assert any(obj["metadata"]["name"] == "broken" for obj in objects)
    findings = validate_objects(objects)
    assert [(f.object, f.path) for f in findings] == [
        ("ConfigMap/default/broken", "$.data.replicas"),
        ("Widget/default/w", "$.apiVersion"),  # no schema: never validated, so no pass
    ]
