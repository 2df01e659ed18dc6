"""Rendering a bundled template as the portal does, and what every test of a render needs.

Renders go through the portal's own path: the template is published as a tagged git
repository, the answers are validated by the template's validators plus the portal's, and
Copier runs in the portal's worker process with ``unsafe=False``. The overlays are built
with the real ``kubectl kustomize`` and the review checks are the portal's own.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from portal.changes.environments import TEMPLATE_VARIABLE as ENVIRONMENTS_VARIABLE
from portal.config import DEFAULT_TEMPLATE_BASE_URL
from portal.cost.model import Prices
from portal.integrations import copier as copier_integration
from portal.integrations.copier import RenderResult, render
from portal.integrations.copier_answers import RecordedSource
from portal.integrations.kubernetes import kustomize_build
from portal.integrations.promtool import PromtoolCli, find_promtool
from portal.review.checks import CheckStatus, CheckTools, run_manifest_checks
from portal.scaffold.answers import validate_answers
from portal.scaffold.registry.bundled import PublishedTemplate, publish
from portal.scaffold.registry.manifest import TemplateInfo, load_template
from portal.scaffold.registry.offered import public_url
from portal.scaffold.slo_rules import rule_files
from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO / "templates"
# The catalog Groups the review's owner check knows in these tests.
GROUPS = frozenset({"platform-team", "sre"})
PER_ENVIRONMENT_CHECKS = ("kustomize", "schema", "policy", "cost")


@dataclass(frozen=True)
class Rendered:
    """One service rendered from a template: where it is and the answers it was given."""

    template: TemplateInfo
    published: PublishedTemplate
    dest: Path
    result: RenderResult
    answers: dict[str, Any]

    @property
    def environments(self) -> list[str]:
        """Return the chosen environments (one overlay each)."""
        return list(self.answers["environments"])


@contextmanager
def published_template(template: Path, data: Path) -> Iterator[PublishedTemplate]:
    """Publish the template folder into ``data`` as the portal does; stop Copier's worker after."""
    try:
        yield publish(load_template(template), data)
    finally:
        copier_integration.shutdown()


def render_service(
    template: TemplateInfo,
    published: PublishedTemplate,
    raw: dict[str, object],
    root: Path,
    environments: list[str] | None = None,
) -> Rendered:
    """Validate ``raw`` as the form would, then render into ``root/services/<name>``.

    ``environments``: the GitOps repository's, passed as the scaffold job passes them (the
    Copier data ``portal_environments``, never an answer); None renders as plain Copier does.
    """
    answers, errors = validate_answers(template.questions, raw, environments)
    assert errors == {}, f"{template.name} refuses the answers: {errors}"
    dest = root / "services" / str(answers["name"])
    # Recorded as the registry records a bundled template: its URL, served by the portal.
    source = RecordedSource(public_url(DEFAULT_TEMPLATE_BASE_URL, template.name))
    data = dict(answers)
    if environments is not None:
        data[ENVIRONMENTS_VARIABLE] = environments
    result = render(published.src, published.vcs_ref, data, dest, source=source)
    return Rendered(template, published, dest, result, answers)


def load(path: Path) -> Any:
    """Return the YAML document of ``path``."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def built_overlays(dest: Path) -> dict[str, list[dict[str, Any]]]:
    """Build every overlay of a rendered service with ``kubectl kustomize``, by environment."""
    kubectl = require_tool("kubectl")
    overlays = sorted(path for path in (dest / "deploy" / "overlays").iterdir() if path.is_dir())
    return {overlay.name: kustomize_build(overlay, kubectl=kubectl) for overlay in overlays}


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Index built objects by kind; a kind present twice is a test failure."""
    kinds = [obj["kind"] for obj in objects]
    assert len(kinds) == len(set(kinds)), f"a kind is defined twice: {sorted(kinds)}"
    return {obj["kind"]: obj for obj in objects}


def review_problems(rendered: Rendered) -> dict[str, tuple[str, list[str]]]:
    """Run the portal's review checks on the rendered service; return every check not passed.

    With promtool on PATH, the SLO's generated rules are checked and unit-tested too.
    """
    promtool = find_promtool()
    tools = CheckTools(
        kubectl=require_tool("kubectl"), promtool=PromtoolCli(promtool) if promtool else None
    )
    with tempfile.TemporaryDirectory() as tmp:
        # Checked as the scaffold commits it: with the SLO rules its slo.yaml generates.
        service = Path(tmp) / rendered.dest.name
        shutil.copytree(rendered.dest, service)
        folder = f"services/{service.name}/"
        files = {folder + p.relative_to(service).as_posix(): p for p in service.rglob("*")}
        read = {path: file.read_bytes() for path, file in files.items() if file.is_file()}
        for path, content in rule_files(service.name, read).items():
            (service / path.removeprefix(folder)).write_bytes(content)
        results = run_manifest_checks(
            service, rendered.environments, GROUPS.__contains__, Prices(), tools
        )
    names = {result.name for result in results}
    expected = {"policy", "slo rules", "slo rules shipped"} | {
        f"{check} ({environment})"
        for environment in rendered.environments
        for check in PER_ENVIRONMENT_CHECKS
    }
    assert expected <= names, f"checks that did not run: {sorted(expected - names)}"
    return {
        result.name: (result.summary, [finding.message for finding in result.findings])
        for result in results
        if result.status != CheckStatus.PASSED
    }
