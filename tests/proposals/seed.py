"""A service that already exists on the GitOps main, and commits that move main meanwhile."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from portal.catalog.importer import import_locations
from portal.changes.gitops import GitOpsFileReader
from portal.config import Settings
from portal.review.checks import CheckTools
from portal.scaffold.flux import flux_kustomizations
from tests.conftest import REPO, require_tool, runtime

GOOD = REPO / "tests" / "review" / "manifests" / "good"
SERVICE = "air-quality"
OWNER = "platform-team"


def remote_of(settings: Settings) -> Path:
    return settings.data_dir / "gitops" / "remote.git"


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Someone", "-c", "user.email=someone@example.invalid"]
    return subprocess.run(
        ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def push_to_main(settings: Settings, work: Path, files: dict[str, str], message: str) -> str:
    """Commit ``files`` (path -> text) on the remote's main as someone outside the portal."""
    if not work.exists():
        subprocess.run(["git", "clone", "-q", str(remote_of(settings)), str(work)], check=True)
    git(work, "pull", "-q", "--ff-only")
    for path, text in files.items():
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    git(work, "push", "-q", "origin", "HEAD:main")
    return git(work, "rev-parse", "HEAD").strip()


def seed_service(portal: TestClient, settings: Settings, work: Path) -> None:
    """Put the air-quality test service on main, owned by platform-team in the catalog."""
    files: dict[str, str] = {}
    for source in GOOD.rglob("*"):
        if source.is_file():
            files[f"services/{SERVICE}/{source.relative_to(GOOD)}"] = source.read_text()
    catalog = files[f"services/{SERVICE}/catalog-info.yaml"].replace(
        "group:team-air", f"group:{OWNER}"
    )
    files[f"services/{SERVICE}/catalog-info.yaml"] = catalog
    for path, content in flux_kustomizations(SERVICE, ["dev", "prod"]).items():
        files[path] = content.decode()
    push_to_main(settings, work, files, f"Add {SERVICE}")
    # Imported as a merge imports it: from the GitOps repository's main.
    repo = runtime(portal).context.gitops()
    repo.refresh()
    location = f"git+{repo.public_url}#{repo.main}:services/{SERVICE}/catalog-info.yaml"
    with Session(runtime(portal).context.engine) as session:
        report = import_locations(session, [location], settings, git=GitOpsFileReader(repo))
    assert not report.problems, report.problems
    # The real kustomize, schema, policy, semantic, cost and collision checks; checkov
    # and promtool are left out (they have tests of their own).
    runtime(portal).context.check_tools = CheckTools(kubectl=require_tool("kubectl"))
