"""Render the bundled fastapi-service template for real: worker process, kustomize, its tests."""

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations import copier as copier_integration
from portal.integrations.copier import RenderResult, render
from portal.integrations.git import run_git
from portal.scaffold.answers import validate_answers
from portal.scaffold.flux import flux_kustomizations
from portal.scaffold.templates import PublishedTemplate, load_template, publish
from tests.conftest import require_tool
from tests.templates.service_venv import run_generated_tests

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "templates" / "fastapi-service"
REQUIRED = [
    ".copier-answers.yml",
    ".dockerignore",
    "Dockerfile",
    "README.md",
    "app/__init__.py",
    "app/main.py",
    "app/settings.py",
    "catalog-info.yaml",
    "pyproject.toml",
    "slo.yaml",
    "tests/conftest.py",
    "tests/test_main.py",
    "deploy/base/kustomization.yaml",
    "deploy/base/namespace.yaml",
    "deploy/base/deployment.yaml",
    "deploy/base/service.yaml",
    "deploy/base/hpa.yaml",
    "deploy/base/pdb.yaml",
]
DEFAULTS: dict[str, object] = {
    "name": "air-q",
    "owner": "platform-team",
    "description": "Air quality readings",
}
CUSTOM: dict[str, object] = {
    "name": "quiet-api",
    "owner": "sre",
    "system": "observability",
    "description": 'Says "hello": quietly, in ünicode',
    "lifecycle": "deprecated",
    "port": "9000",
    "cpu_request": "250m",
    "memory_request": "256Mi",
    "replicas_min": "1",
    "replicas_max": "3",
    "enable_metrics": "false",
    "image_tag": "1.4.2",
    "environments": ["dev", "prod"],
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublishedTemplate]:
    yield publish(load_template(TEMPLATE), tmp_path_factory.mktemp("data"))
    copier_integration.shutdown()


def render_answers(
    published: PublishedTemplate, raw: dict[str, object], dest: Path
) -> tuple[RenderResult, dict[str, Any]]:
    answers, errors = validate_answers(load_template(TEMPLATE).questions, raw)
    assert errors == {}
    return render(published.src, published.vcs_ref, answers, dest), answers


@pytest.fixture(scope="module")
def default_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, RenderResult]:
    dest = tmp_path_factory.mktemp("gitops") / "services" / "air-q"
    result, _ = render_answers(published, DEFAULTS, dest)
    return dest, result


@pytest.fixture(scope="module")
def custom_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, RenderResult]:
    dest = tmp_path_factory.mktemp("gitops") / "services" / "quiet-api"
    result, _ = render_answers(published, CUSTOM, dest)
    return dest, result


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def overlay_image_tags(overlay: Path) -> list[str]:
    return [str(image["newTag"]) for image in load(overlay / "kustomization.yaml")["images"]]


def test_default_render_has_every_required_file(default_service: tuple[Path, RenderResult]) -> None:
    dest, result = default_service
    for name in [*REQUIRED, "deploy/base/servicemonitor.yaml"]:
        assert name in result.files, name
        assert (dest / name).is_file()
    overlays = sorted(p.name for p in (dest / "deploy" / "overlays").iterdir())
    assert overlays == ["dev", "prod", "staging"]
    assert result.template_commit == "v0.3.0"
    assert result.warnings == ()  # e.g. no DirtyLocalWarning: the repository is bare


def test_answers_file_records_source_and_commit(
    published: PublishedTemplate, default_service: tuple[Path, RenderResult]
) -> None:
    recorded = load(default_service[0] / ".copier-answers.yml")
    assert recorded["_commit"] == "v0.3.0"
    assert recorded["_src_path"] == published.src
    assert recorded["name"] == "air-q" and recorded["environments"] == ["dev", "staging", "prod"]


def test_base_deployment_is_hardened_and_leaves_replicas_to_the_hpa(
    default_service: tuple[Path, RenderResult],
) -> None:
    base = default_service[0] / "deploy" / "base"
    assert "replicas:" not in (base / "deployment.yaml").read_text()
    deployment = load(base / "deployment.yaml")
    assert "replicas" not in deployment["spec"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["runAsNonRoot"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert load(base / "hpa.yaml")["apiVersion"] == "autoscaling/v2"
    assert load(base / "pdb.yaml")["apiVersion"] == "policy/v1"
    assert load(base / "servicemonitor.yaml")["apiVersion"] == "monitoring.coreos.com/v1"


def test_every_overlay_pins_an_image_tag(
    default_service: tuple[Path, RenderResult], custom_service: tuple[Path, RenderResult]
) -> None:
    for dest, _ in (default_service, custom_service):
        for overlay in (dest / "deploy" / "overlays").iterdir():
            kustomization = load(overlay / "kustomization.yaml")
            assert kustomization["resources"] == ["../../base"]
            tags = overlay_image_tags(overlay)
            assert tags and all(tag and tag != "latest" for tag in tags)


def test_catalog_entity_and_slo(default_service: tuple[Path, RenderResult]) -> None:
    dest = default_service[0]
    entity = load(dest / "catalog-info.yaml")
    assert entity["kind"] == "Component"
    assert entity["spec"] == {
        "type": "service",
        "lifecycle": "experimental",
        "owner": "platform-team",
    }
    assert entity["metadata"]["annotations"]["backstage.io/kubernetes-id"] == "air-q"
    slo = load(dest / "slo.yaml")
    assert slo["version"] == "prometheus/v1" and slo["service"] == "air-q"
    (objective,) = slo["slos"]
    assert objective["objective"] == 99.9
    assert "http_requests_total" in objective["sli"]["events"]["total_query"]
    assert "{{.window}}" in objective["sli"]["events"]["error_query"]


def test_custom_answers_change_the_render(custom_service: tuple[Path, RenderResult]) -> None:
    dest, result = custom_service
    assert "deploy/base/servicemonitor.yaml" not in result.files
    assert sorted(p.name for p in (dest / "deploy" / "overlays").iterdir()) == ["dev", "prod"]
    container = load(dest / "deploy" / "base" / "deployment.yaml")["spec"]["template"]["spec"]
    assert container["containers"][0]["ports"][0]["containerPort"] == 9000
    entity = load(dest / "catalog-info.yaml")
    assert entity["metadata"]["description"] == CUSTOM["description"]
    assert entity["spec"]["system"] == "observability"
    assert entity["spec"]["lifecycle"] == "deprecated"
    assert overlay_image_tags(dest / "deploy" / "overlays" / "prod") == ["1.4.2"]
    assert "METRICS_ENABLED = False" in (dest / "app" / "settings.py").read_text()


def kubectl() -> str:
    return str(require_tool("kubectl"))


@pytest.mark.integration
@pytest.mark.parametrize("service", ["default_service", "custom_service"])
def test_every_overlay_builds_with_kustomize(service: str, request: pytest.FixtureRequest) -> None:
    dest, _ = request.getfixturevalue(service)
    expected_hpa = {"dev": (1, 2), "staging": (1, 5), "prod": (2, 5)}
    if service == "custom_service":
        expected_hpa = {"dev": (1, 2), "prod": (1, 3)}
    for overlay in sorted((dest / "deploy" / "overlays").iterdir()):
        built = subprocess.run(
            [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, check=False
        )
        assert built.returncode == 0, built.stderr
        objects = {doc["kind"]: doc for doc in load_all(built.stdout)}
        kinds = {"Namespace", "Deployment", "Service", "HorizontalPodAutoscaler"}
        kinds |= {"PodDisruptionBudget", "NetworkPolicy"} | (
            {"ServiceMonitor"} if service == "default_service" else set()
        )
        assert set(objects) == kinds
        assert all(
            doc["metadata"].get("namespace") == dest.name
            for kind, doc in objects.items()
            if kind != "Namespace"
        )
        image = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.rsplit(":", 1)[1] == overlay_image_tags(overlay)[0] != "latest"
        assert "replicas" not in objects["Deployment"]["spec"]
        hpa = objects["HorizontalPodAutoscaler"]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == expected_hpa[overlay.name]
        assert ".copier-answers.yml" not in built.stdout


@pytest.mark.parametrize("service", ["default_service", "custom_service"])
def test_the_rendered_service_passes_its_own_tests(
    service: str, request: pytest.FixtureRequest
) -> None:
    dest, _ = request.getfixturevalue(service)
    result = run_generated_tests(dest, TEMPLATE.name)  # a fresh venv from the service's lock
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_flux_kustomizations_point_at_the_rendered_overlays(
    custom_service: tuple[Path, RenderResult],
) -> None:
    dest, _ = custom_service
    files = flux_kustomizations("quiet-api", ["dev", "prod"])
    assert sorted(files) == [
        "clusters/dev/services/quiet-api.yaml",
        "clusters/prod/services/quiet-api.yaml",
    ]
    gitops_root = dest.parent.parent
    for path, content in files.items():
        document = yaml.safe_load(content)
        assert document["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
        assert document["kind"] == "Kustomization"
        assert document["metadata"] == {
            "name": "quiet-api",
            "namespace": "flux-system",
            "labels": {
                "app.kubernetes.io/name": "quiet-api",
                "app.kubernetes.io/part-of": "quiet-api",
            },
        }
        spec = document["spec"]
        env = path.split("/")[1]
        assert spec["path"] == f"./services/quiet-api/deploy/overlays/{env}"
        assert (gitops_root / spec["path"] / "kustomization.yaml").is_file()
        assert spec["prune"] is True and spec["wait"] is True
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
        assert spec["dependsOn"] == [{"name": "infrastructure"}]
        assert spec["interval"] and spec["timeout"]
        assert "targetNamespace" not in spec


def test_flux_kustomizations_options_and_bad_input() -> None:
    (content,) = flux_kustomizations(
        "shop", ["dev"], depends_on=(), target_namespace="shop"
    ).values()
    spec = yaml.safe_load(content)["spec"]
    assert "dependsOn" not in spec and spec["targetNamespace"] == "shop"
    with pytest.raises(ValueError, match="DNS-1123"):
        flux_kustomizations("../shop", ["dev"])
    with pytest.raises(ValueError, match="environment"):
        flux_kustomizations("shop", ["Dev"])
    with pytest.raises(ValueError, match="at least one"):
        flux_kustomizations("shop", [])


def test_copier_update_moves_a_service_to_a_new_template_version(
    tmp_path: Path, published: PublishedTemplate
) -> None:
    template = tmp_path / "fastapi-service"
    shutil.copytree(TEMPLATE, template, ignore=shutil.ignore_patterns("__pycache__"))
    first = publish(load_template(template), tmp_path / "data")
    service = tmp_path / "gitops" / "air-q"
    # As the portal renders: from a snapshot of the template commit, not a clone.
    snapshots = tmp_path / "snapshots"
    assert render(
        first.src, first.vcs_ref, dict(DEFAULTS), service, snapshot_root=snapshots
    ).from_snapshot
    options = ("-C", str(service), "-c", "user.name=t", "-c", "user.email=t@t")
    run_git("init", "--quiet", str(service))
    run_git(*options, "add", "--all")
    run_git(*options, "commit", "--quiet", "-m", "scaffold")
    readme = template / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nUpdated by template 0.4.0.\n")
    manifest = template / "template.yaml"
    manifest.write_text(manifest.read_text().replace("version: 0.3.0", "version: 0.4.0"))
    second = publish(load_template(template), tmp_path / "data")
    assert second.tag == "v0.4.0"
    update = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults", "--vcs-ref", "v0.4.0", "."],
        cwd=service,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert update.returncode == 0, update.stderr
    assert "Updated by template 0.4.0." in (service / "README.md").read_text()
    assert load(service / ".copier-answers.yml")["_commit"] == "v0.4.0"
