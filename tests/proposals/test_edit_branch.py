"""The GitOps writer's edit branch: one commit on the main it was computed from, nothing more."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.config import Settings
from portal.integrations.gitops import BranchExistsError, GitOpsError, RefNotFoundError
from tests.conftest import runtime
from tests.proposals.seed import SERVICE, git, push_to_main, remote_of, seed_service

AUTHOR = ("user:default/grace.hopper", "portal@example.invalid")
OVERLAY = f"services/{SERVICE}/deploy/overlays/dev/kustomization.yaml"


def test_an_edit_branch_sits_on_its_base_and_writes_only_its_files(
    portal: TestClient, settings: Settings, tmp_path: Path
) -> None:
    seed_service(portal, settings, tmp_path / "someone")
    repo = runtime(portal).context.gitops()
    base = repo.refresh()
    push_to_main(settings, tmp_path / "someone", {"README.md": "moved\n"}, "Main moves on")
    files = {OVERLAY: b"kind: Kustomization\n", f"services/{SERVICE}/new.txt": b"new\n"}
    sha = repo.create_edit_branch("change/air-quality/1", base, files, "Edit", AUTHOR)
    remote = remote_of(settings)
    assert git(remote, "rev-parse", f"{sha}^1").strip() == base  # not the newer main
    changed = git(remote, "diff", "--name-status", base, sha).split("\n")
    assert sorted(line for line in changed if line) == [
        f"A\tservices/{SERVICE}/new.txt",
        f"M\t{OVERLAY}",
    ]
    with pytest.raises(BranchExistsError):
        repo.create_edit_branch("change/air-quality/1", base, files, "Edit", AUTHOR)
    # A file written where main has a folder would delete the folder's files: refused.
    folder = {f"services/{SERVICE}/deploy/base": b"x\n"}
    with pytest.raises(GitOpsError, match="changes more than its files"):
        repo.create_edit_branch("change/air-quality/2", base, folder, "Edit", AUTHOR)
    stranger = git(tmp_path / "someone", "commit-tree", "-m", "x", f"{base}^{{tree}}").strip()
    git(tmp_path / "someone", "push", "-q", "origin", f"{stranger}:refs/heads/stranger")
    repo.refresh()
    with pytest.raises(RefNotFoundError, match="is not a commit of main"):
        repo.create_edit_branch("change/air-quality/3", stranger, files, "Edit", AUTHOR)
    assert "change/air-quality/2" not in git(remote, "branch", "--list")
