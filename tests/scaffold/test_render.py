"""What is specific to the bundled fastapi-service template, rendered for real (worker process,
kustomize, its own tests): its version, metrics that can be switched off, its autoscaler
bounds per environment, the Flux wiring of a render, and `copier update` to a new version.

Everything every template provides is checked by tests/templates/test_contract.py."""

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from portal.integrations import copier as copier_integration
from portal.integrations.copier import render
from portal.integrations.git import run_git
from portal.scaffold.flux import flux_kustomizations
from portal.scaffold.registry.bundled import PublishedTemplate, publish
from portal.scaffold.registry.manifest import load_template
from tests.templates.rendering import (
    TEMPLATES_DIR,
    Rendered,
    built_overlays,
    by_kind,
    load,
    render_service,
)
from tests.templates.service_venv import run_generated_tests

TEMPLATE = TEMPLATES_DIR / "fastapi-service"
DEFAULTS: dict[str, object] = {
    "name": "air-q",
    "owner": "platform-team",
    "description": "Air quality readings",
}
CUSTOM: dict[str, object] = {
    "name": "quiet-api",
    "owner": "sre",
    "description": "Says hello, quietly",
    "lifecycle": "deprecated",
    "replicas_min": "1",
    "replicas_max": "3",
    "enable_metrics": "false",
    "environments": ["dev", "prod"],
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublishedTemplate]:
    yield publish(load_template(TEMPLATE), tmp_path_factory.mktemp("data"))
    copier_integration.shutdown()


@pytest.fixture(scope="module")
def default_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    info = load_template(TEMPLATE)
    return render_service(info, published, DEFAULTS, tmp_path_factory.mktemp("gitops"))


@pytest.fixture(scope="module")
def custom_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    info = load_template(TEMPLATE)
    return render_service(info, published, CUSTOM, tmp_path_factory.mktemp("gitops"))


def test_default_render_is_this_version_with_metrics_and_traces(default_service: Rendered) -> None:
    assert default_service.result.template_commit == "v0.5.0"
    files = set(default_service.result.files)
    for name in ("app/settings.py", "app/telemetry.py", "tests/test_main.py"):
        assert name in files, name
    assert "tests/test_telemetry.py" in files
    settings = (default_service.dest / "app" / "settings.py").read_text()
    assert "METRICS_ENABLED = True" in settings


def test_metrics_switched_off_leave_no_scrape_and_no_endpoint(custom_service: Rendered) -> None:
    dest, files = custom_service.dest, custom_service.result.files
    assert "deploy/base/servicemonitor.yaml" not in files
    assert (
        "servicemonitor.yaml"
        not in load(dest / "deploy" / "base" / "kustomization.yaml")["resources"]
    )
    assert "METRICS_ENABLED = False" in (dest / "app" / "settings.py").read_text()
    assert "| `/metrics` |" not in (dest / "README.md").read_text()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("default_service", {"dev": (1, 2), "staging": (1, 5), "prod": (2, 5)}),
        ("custom_service", {"dev": (1, 2), "prod": (1, 3)}),
    ],
)
def test_each_overlay_has_its_autoscaler_bounds(
    service: str, expected: dict[str, tuple[int, int]], request: pytest.FixtureRequest
) -> None:
    rendered: Rendered = request.getfixturevalue(service)
    overlays = built_overlays(rendered.dest)
    assert sorted(overlays) == sorted(expected)
    for environment, objects in overlays.items():
        kinds = by_kind(objects)
        hpa = kinds["HorizontalPodAutoscaler"]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == expected[environment]
        assert ("ServiceMonitor" in kinds) is (service == "default_service")
        assert "NetworkPolicy" in kinds  # also without metrics


def test_the_service_without_metrics_passes_its_own_tests(custom_service: Rendered) -> None:
    result = run_generated_tests(custom_service.dest, TEMPLATE.name)  # fresh venv, its lock
    assert result.returncode == 0, result.stdout + result.stderr
    # The metrics tests are skipped as disabled, so the test of their absence ran.
    assert "metrics are disabled" in result.stdout and "metrics are enabled" not in result.stdout


def test_flux_kustomizations_point_at_the_rendered_overlays(
    custom_service: Rendered,
) -> None:
    dest = custom_service.dest
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
    readme.write_text(readme.read_text() + "\nUpdated by the next template version.\n")
    manifest = template / "template.yaml"
    major, minor, _ = first.version.split(".")
    following = f"{major}.{int(minor) + 1}.0"
    manifest.write_text(re.sub(r"(?m)^version: .*$", f"version: {following}", manifest.read_text()))
    second = publish(load_template(template), tmp_path / "data")
    assert second.tag == f"v{following}" != first.tag
    update = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults", "--vcs-ref", second.tag, "."],
        cwd=service,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert update.returncode == 0, update.stderr
    assert "Updated by the next template version." in (service / "README.md").read_text()
    assert load(service / ".copier-answers.yml")["_commit"] == second.tag
