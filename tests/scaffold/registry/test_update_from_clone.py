"""``copier update`` from a fresh clone of the GitOps repository, anywhere: issue 12.

A service is scaffolded, checked, approved and merged through the portal's normal path.
A colleague then clones the GitOps repository into a folder of their own and runs the
real ``copier update`` there: Copier finds the template at the URL the answers file
records, which ``portal serve`` (a subprocess on a loopback port) answers over git's smart
HTTP protocol. After a new template release (the version bumped, the portal restarted)
the same command brings the service up to it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.integrations import copier as copier_integration
from portal.integrations.prometheus_local import free_port
from portal.scaffold.jobs import run_pending
from portal.scaffold.registry.manifest import load_template
from tests.conftest import ADA, CHECKOV_PATH, GRACE, REPO, runtime
from tests.scaffold.registry.served_portal import (
    TEMPLATE,
    bump_version,
    copy_template,
    served_portal,
    tool_env,
)

pytestmark = pytest.mark.integration
COPIER = Path(sys.executable).with_name("copier")
SERVICE = "payments"
RELEASE_NOTE = "Released with the next template version."


def scaffold_and_merge(settings: Settings) -> None:
    """Scaffold SERVICE, run its render and checks, approve it as a teammate: merged on main."""
    initialise(settings, gitops=True)
    with TestClient(create_app(settings)) as client:
        answers = {"name": SERVICE, "owner": "platform-team", "description": "Takes payments"}
        created = client.post(
            "/api/scaffold", json={"template": TEMPLATE, "answers": answers}, headers=ADA
        )
        assert created.status_code == 202, created.text
        change_id = created.json()["id"]
        assert run_pending(runtime(client).context) == 1
        change = client.get(f"/api/changes/{change_id}").json()
        assert change["status"] == "ready", change
        approved = client.post(f"/api/changes/{change_id}/approve", json={}, headers=GRACE)
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "merged"
    copier_integration.shutdown()


def run(command: list[str], cwd: Path, home: Path) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=tool_env(home), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_copier_update_works_from_a_fresh_clone_in_another_folder(
    tmp_path: Path, checkov_executable: Path, promtool_executable: Path
) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/templates.git"
    template = copy_template(tmp_path / "portal" / "templates")
    version = load_template(template).version
    settings = Settings(
        data_dir=tmp_path / "portal" / "var",
        auth_mode=AuthMode.TRUSTED_HEADER,
        catalog_paths=[str(REPO / "catalog")],
        secret_key="test-secret-key",
        gitops_seed_dir=REPO / "gitops-repo",
        templates_dir=template.parent,
        error_budget_dir=REPO / "sre" / "error-budgets",
        run_worker=False,
        checkov_path=CHECKOV_PATH,
        template_public_base_url=base_url,  # what `portal serve --port <port>` derives
    )
    scaffold_and_merge(settings)

    # A colleague's machine: another folder, its own home, nothing shared but the URLs.
    elsewhere = tmp_path / "elsewhere"
    home = elsewhere / "home"
    clone = elsewhere / "gitops"
    remote = settings.data_dir / "gitops" / "remote.git"
    run(["git", "clone", "--quiet", str(remote), str(clone)], elsewhere.parent, home)
    answers_file = clone / "services" / SERVICE / ".copier-answers.yml"
    recorded = yaml.safe_load(answers_file.read_text())
    assert recorded["_src_path"] == f"{base_url}/{TEMPLATE}.git"
    assert recorded["_commit"] == f"v{version}"
    assert str(tmp_path) not in answers_file.read_text()

    update = [str(COPIER), "update", "--defaults", f"services/{SERVICE}"]
    with served_portal(settings.data_dir, template.parent, port=port) as portal:
        said = run(update, clone, home)
        assert f"GET /templates.git/{TEMPLATE}.git/info/refs" in portal.output()
    assert f"Keeping template version {version}" in said
    assert run(["git", "status", "--porcelain"], clone, home) == ""

    # A new release of the template: the portal publishes it when it starts again.
    readme = template / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + f"\n{RELEASE_NOTE}\n")
    major, minor, patch = version.split(".")
    released = f"{major}.{minor}.{int(patch) + 1}"
    bump_version(template, released)
    with served_portal(settings.data_dir, template.parent, port=port):
        said = run(update, clone, home)
    assert f"Updating to template version {released}" in said

    assert RELEASE_NOTE in (clone / "services" / SERVICE / "README.md").read_text()
    recorded = yaml.safe_load(answers_file.read_text())
    assert recorded["_commit"] == f"v{released}"
    assert recorded["_src_path"] == f"{base_url}/{TEMPLATE}.git"
    changed = run(["git", "status", "--porcelain"], clone, home).split("\n")
    assert sorted(line.split()[-1] for line in changed if line) == [
        f"services/{SERVICE}/.copier-answers.yml",
        f"services/{SERVICE}/README.md",
    ]
