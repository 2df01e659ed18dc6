"""The AIOps detector's proposals are what the portal's ``POST /api/changes`` accepts.

The template's pure ``app/remediation.py`` and ``app/rules.py`` are imported by their path.
Its payloads are validated with the API's own request model and evidence checks, and their edits are
applied with the portal's :func:`portal.changes.edits.apply_edits` to services rendered from
the air-quality and fastapi-service templates (their ``deploy/`` files, rendered with Jinja
as Copier does) on ``main`` of a real GitOps repository; the edited overlays are then built
with the real ``kubectl kustomize``.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2
import pytest
import yaml

from portal.changes.edits import EditError, apply_edits, path_problem
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.integrations.kubernetes import kustomize_build
from portal.proposals.api import ChangeIn, _edits
from portal.proposals.evidence import EvidenceItem, checked_evidence
from portal.scaffold.flux import flux_kustomizations
from portal.scaffold.questions import default_for, parse_questions
from tests.conftest import require_tool
from tests.integrations.gitops_support import ANN, make_settings
from tests.templates.rendering import TEMPLATES_DIR

APP = TEMPLATES_DIR / "aiops-detector" / "template" / "app"
IMAGE = "registry.example.com/services/air-quality"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
RULES = f"""\
dry_run: false
detector_url: https://detector.example.com
rules:
  - name: aq-scale
    signal: {{query: latency, min_severity: critical}}
    action: {{type: scale_out, service: air-quality, environment: prod, step: 1, max: 10}}
  - name: aq-back
    signal: {{query: errors, min_severity: critical}}
    action:
      type: rollback
      service: air-quality
      environment: prod
      image: {IMAGE}
      tag_history: ["1.3.0", "1.4.0", "1.5.0"]
  - name: aq-restart
    signal: {{query: memory, min_severity: warning}}
    action: {{type: restart, service: air-quality, environment: dev}}
  - name: hello-scale
    signal: {{query: hello-latency, min_severity: warning}}
    action: {{type: scale_out, service: hello-api, environment: prod, step: 2, max: 5}}
"""
# Template, service name, answers (only what the deploy/ files use).
SERVICES: dict[str, tuple[str, dict[str, Any]]] = {
    "air-quality": (
        "air-quality-monitor",
        {"replicas_dev": 1, "replicas_staging": 1, "replicas_prod": 2, "replicas_max": 4},
    ),
    "hello-api": (
        "fastapi-service",
        {"replicas_min": 2, "replicas_max": 3, "enable_metrics": True},
    ),
}
COMMON = {
    "system": "",
    "image_tag": "1.5.0",
    "port": 8080,
    "cpu_request": "100m",
    "cpu_limit": "1",
    "memory_request": "256Mi",
    "memory_limit": "512Mi",
    "scrape_interval": "30s",
}
ENVIRONMENTS = ["dev", "prod"]
OVERLAY_FOLDER = "{% yield env from environments %}{{ env }}{% endyield %}"


def load_template_module(name: str) -> ModuleType:
    """Import a pure module of the template's ``app`` by its path, in a package of its own."""
    package = "aiops_template_app"  # never ``app``: that name is the rendered service's
    if package not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            package, APP / "__init__.py", submodule_search_locations=[str(APP)]
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module  # pydantic and dataclasses resolve names through it
        spec.loader.exec_module(module)
    return importlib.import_module(f"{package}.{name}")


remediation = load_template_module("remediation")
rules = load_template_module("rules")


def environment_classes(root: Path) -> Any:
    """The template's computed ``environment_classes`` for ``ENVIRONMENTS``, as Copier has it."""
    config = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))
    (field,) = [field for field in parse_questions(config) if field.name == "environment_classes"]
    return default_for(field, {"environments": ENVIRONMENTS})


def render_deploy(service: str) -> dict[str, bytes]:
    """Render a template's ``deploy/`` folder for ``service`` (base and the overlays)."""
    template, answers = SERVICES[service]
    root = TEMPLATES_DIR / template
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # YAML, as Copier renders it
    )
    env.filters["to_json"] = lambda value, **options: json.dumps(value, **options)
    values = {
        **COMMON,
        **answers,
        "name": service,
        "image_repository": IMAGE
        if service == "air-quality"
        else f"registry.example.com/{service}",
        "environments": ENVIRONMENTS,
        "environment_classes": environment_classes(root),
    }
    files: dict[str, bytes] = {}
    base = root / "template" / "deploy" / "base"
    for source in sorted(base.glob("*.jinja")):
        name = env.from_string(source.name.removesuffix(".jinja")).render(values)
        if name:  # a file name that renders empty is not created (Copier's rule)
            text = env.get_template(source.relative_to(root).as_posix()).render(values)
            files[f"services/{service}/deploy/base/{name}"] = text.encode()
    # Every file of the overlay (the kustomization, a model pin, ...) once per environment,
    # as Copier's `{% yield env from environments %}` folder makes it, with `env` set.
    (overlay,) = (root / "template" / "deploy" / "overlays").iterdir()
    assert overlay.name == OVERLAY_FOLDER
    for environment in ENVIRONMENTS:
        for source in sorted(overlay.glob("*.jinja")):
            path = source.relative_to(root).as_posix()
            text = env.get_template(path).render(values | {"env": environment})
            name = source.name.removesuffix(".jinja")
            files[f"services/{service}/deploy/overlays/{environment}/{name}"] = text.encode()
    files.update(flux_kustomizations(service, ENVIRONMENTS))
    return files


@dataclass
class Repo:
    """The GitOps repository with both services on main, and the files of main."""

    gitops: GitOpsRepo
    main: dict[str, bytes]
    kubectl: Path
    scratch: Path


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    kubectl = require_tool("kubectl")
    root = tmp_path_factory.mktemp("aiops-remediation")
    gitops = bootstrap_gitops(make_settings(root / "var"))
    files = {path: text for service in SERVICES for path, text in render_deploy(service).items()}
    gitops.create_branch("scaffold/services", files, "Add the services", ANN)
    gitops.merge("scaffold/services", "Merge the services", ANN)
    return Repo(gitops, files, kubectl, root / "scratch")


def payload(query: str, severity: str = "critical", **state: Any) -> dict[str, Any]:
    """Return the payload the rules propose for an anomaly of ``query`` in the given state."""
    remediator = remediation.Remediator(rules.load_config(RULES), lambda: T0)
    window = remediation.AnomalyWindow(
        query, T0 - timedelta(minutes=10), T0, 2.7, severity, "both", 1.0
    )
    rule = next(rule.name for rule in remediator.config.rules if rule.signal.query == query)
    [decision] = remediator.decide(window, {rule: remediation.ServiceState(**state)})
    assert decision.payload is not None, decision.summary
    result: dict[str, Any] = decision.payload
    return result


def built(repo: Repo, edited: dict[str, bytes], service: str, environment: str) -> dict[str, Any]:
    """Build the edited overlay of ``service`` with kustomize; return its objects by kind."""
    folder = repo.scratch / f"{service}-{environment}-{len(list(repo.scratch.glob('*')))}"
    for path, text in {**repo.main, **edited}.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text)
    overlay = folder / "services" / service / "deploy" / "overlays" / environment
    return {obj["kind"]: obj for obj in kustomize_build(overlay, kubectl=repo.kubectl)}


def applied(repo: Repo, body: dict[str, Any]) -> dict[str, bytes]:
    """Apply the payload's edits to main as ``POST /api/changes`` does; return the files."""
    change = ChangeIn.model_validate(body)
    return apply_edits(repo.gitops, repo.gitops.refresh(), change.service, _edits(change)).files


def changed_lines(repo: Repo, edited: dict[str, bytes], path: str) -> list[str]:
    """Return the lines a change removes and adds in ``path``."""
    old, new = repo.main[path].decode().splitlines(), edited[path].decode().splitlines()
    return [
        line
        for line in difflib.unified_diff(old, new, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize(
    ("query", "state"),
    [
        ("latency", {"min_replicas": 2, "max_replicas": 4}),
        ("errors", {"image_tag": "1.5.0"}),
        ("memory", {}),
        ("hello-latency", {"min_replicas": 2, "max_replicas": 3}),
    ],
)
def test_every_payload_is_what_post_api_changes_accepts(query: str, state: dict[str, Any]) -> None:
    body = payload(query, **state)
    change = ChangeIn.model_validate(body)
    edits = _edits(change)
    assert edits
    assert all(path_problem(change.service, edit.path) is None for edit in edits)
    errors: dict[str, str] = {}
    items = [EvidenceItem(e.label, e.url, e.text, e.figure) for e in change.evidence]
    stored = checked_evidence(items, errors)
    assert errors == {}
    assert [item["label"] for item in stored] == ["query", "anomaly window", "scores", "chart"]


@pytest.mark.integration
def test_scale_out_raises_the_hpa_minimum_of_the_overlay(repo: Repo) -> None:
    overlay = "services/air-quality/deploy/overlays/prod/kustomization.yaml"
    edited = applied(repo, payload("latency", min_replicas=2, max_replicas=4))
    assert list(edited) == [overlay]
    assert changed_lines(repo, edited, overlay) == ["-        value: 2", "+        value: 3"]
    hpa = built(repo, edited, "air-quality", "prod")["HorizontalPodAutoscaler"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 4)
    # Past the maximum, the maximum rises with the minimum (fastapi-service's overlay).
    edited = applied(repo, payload("hello-latency", "warning", min_replicas=2, max_replicas=3))
    hpa = built(repo, edited, "hello-api", "prod")["HorizontalPodAutoscaler"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 4)


@pytest.mark.integration
def test_rollback_sets_the_previous_tag_and_keeps_the_image_policy_marker(repo: Repo) -> None:
    overlay = "services/air-quality/deploy/overlays/prod/kustomization.yaml"
    edited = applied(repo, payload("errors", image_tag="1.5.0"))
    marker = '# {"$imagepolicy": "flux-system:air-quality-prod:tag"}'
    assert changed_lines(repo, edited, overlay) == [
        f'-    newTag: "1.5.0" {marker}',
        f'+    newTag: "1.4.0" {marker}',
    ]
    deployment = built(repo, edited, "air-quality", "prod")["Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"{IMAGE}:1.4.0"


@pytest.mark.integration
def test_restart_annotates_the_pod_template_of_the_environment(repo: Repo) -> None:
    edited = applied(repo, payload("memory", "warning"))
    assert list(edited) == ["services/air-quality/deploy/overlays/dev/kustomization.yaml"]
    deployment = built(repo, edited, "air-quality", "dev")["Deployment"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations[remediation.RESTART_ANNOTATION] == "2026-03-02T10:00:00Z"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("query", "state", "field"),
    [
        ("latency", {"min_replicas": 3, "max_replicas": 4}, "edits[0].patch.patch"),
        ("errors", {"image_tag": "1.4.0"}, "edits[0].patch.patch"),  # would go to 1.3.0
    ],
)
def test_a_proposal_from_a_stale_state_is_refused(
    repo: Repo, query: str, state: dict[str, Any], field: str
) -> None:
    """Main holds other bounds or another tag than the cluster reported: nothing is written."""
    with pytest.raises(EditError) as refused:
        applied(repo, payload(query, **state))
    assert "a test operation failed" in refused.value.errors[field]


@pytest.mark.parametrize("dry_run", [True, False])
def test_the_shipped_rules_file_renders_valid(dry_run: bool) -> None:
    source = (
        TEMPLATES_DIR / "aiops-detector" / "template" / "deploy" / "base" / "remediation.yaml.jinja"
    )
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # YAML
    values = {"name": "detector", "dry_run": dry_run, "environments": ["dev", "staging", "prod"]}
    text = env.from_string(source.read_text()).render(values)
    config = rules.load_config(text)
    assert (config.dry_run, config.rules) == (dry_run, [])
    assert config.detector_url == "http://detector.detector.svc.cluster.local"
