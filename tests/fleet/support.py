"""Shared steps of the fleet tests: release a template version, land services on main."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from portal.integrations.gitops import GitOpsRepo
from tests.conftest import changes_runtime, runtime
from tests.fleet_versions import FLEET_TEMPLATE, TEMPLATE_NAME

AUTHOR = ("Fleet Tests", "fleet-tests@example.com")
DEPLOYMENT = "k8s/deployment.yaml"


def release(templates: Path, version: str) -> None:
    """Put ``version`` of the fleet template in a portal's templates folder."""
    shutil.rmtree(templates / TEMPLATE_NAME, ignore_errors=True)
    shutil.copytree(FLEET_TEMPLATE / version, templates / TEMPLATE_NAME)


def land(repo: GitOpsRepo, branch: str, files: dict[str, bytes]) -> None:
    """Put ``files`` on main, as an approved change would."""
    repo.create_edit_branch(branch, repo.refresh(), files, f"Add {branch}", AUTHOR)
    repo.merge(branch, f"Merge {branch}", AUTHOR)


def generate(client: TestClient, service: str, scratch: Path, ref: str = "v1.0.0") -> None:
    """Render ``service`` from the fleet template at ``ref`` and land it on main."""
    template = runtime(client).context.registry.get(TEMPLATE_NAME)
    assert template is not None
    dest = scratch / service
    answers = {"name": service, "owner": "platform-team"}
    result = runtime(client).context.renderer.render(
        template.src, ref, answers, dest, source=template.source
    )
    files = {f"services/{service}/{p}": (dest / p).read_bytes() for p in result.files}
    land(changes_runtime(client).gitops(), f"scaffold/{service}", files)


def edit(client: TestClient, service: str, old: bytes, new: bytes) -> None:
    """Replace ``old`` with ``new`` in the service's Deployment on main (a team's edit)."""
    repo = changes_runtime(client).gitops()
    path = f"services/{service}/{DEPLOYMENT}"
    text = repo.read_file("main", path)
    assert old in text
    land(repo, f"edit/{service}", {path: text.replace(old, new)})


def resolved(text: str, keep: str) -> str:
    """Return ``text`` with its one conflict replaced by the line ``keep``."""
    start, end = text.index("<<<<<<<"), text.index(">>>>>>>")
    return text[:start] + keep + "\n" + text[text.index("\n", end) + 1 :]
