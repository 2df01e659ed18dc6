"""Revisions of a change's branch on real git: one more commit, fast-forward only."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.config import Settings
from portal.integrations.gitops import (
    FileExistsOnMainError,
    GitOpsError,
    GitOpsRepo,
    RefNotFoundError,
)
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from tests.integrations.gitops_support import (
    ANN,
    REX,
    git,
    make_settings,
    remote_dir,
    remote_sha,
    service_files,
)

# update_branch (a revision after "request changes") -------------------------------------


def test_update_branch_replaces_the_change_and_only_fast_forwards(
    settings: Settings, repo: GitOpsRepo
) -> None:
    main = repo.resolve("main")
    first = repo.create_branch("scaffold/r", service_files("r"), "Add r", ANN)
    revised = {k: v for k, v in service_files("r").items() if "prod" not in k}
    revised["services/r/app.py"] = b"print('revised')\n"
    other = repo.create_branch("scaffold/o", service_files("o"), "Add o", ANN)
    repo.merge("scaffold/o", "Merge o", REX)  # main moves on meanwhile

    second = repo.update_branch("scaffold/r", first, revised, "Revise r\n\nRevision: 2", ANN)

    assert remote_sha(settings, "refs/heads/scaffold/r") == second
    parents = git("--git-dir", str(remote_dir(settings)), "rev-parse", f"{second}^@").split()
    assert parents == [main, first], "first parent: the base; second: the previous revision"
    assert repo.read_file("scaffold/r", "services/r/app.py") == b"print('revised')\n"
    assert repo.changed_files(second, base=repo.parent_of(second)) == sorted(revised)
    assert "clusters/prod/services/r.yaml" not in repo.list_files(second)
    assert "Revision: 2" in repo.message_of(second)
    assert other not in git("--git-dir", str(remote_dir(settings)), "rev-list", second)
    merged = repo.merge("scaffold/r", "Merge r", REX)
    assert set(revised) <= set(repo.list_files(merged))
    assert "clusters/prod/services/r.yaml" not in repo.list_files(merged)


def test_update_branch_refuses_a_moved_or_merged_branch(repo: GitOpsRepo) -> None:
    first = repo.create_branch("scaffold/s", service_files("s"), "Add s", ANN)
    second = repo.update_branch("scaffold/s", first, service_files("s"), "Revision 2", ANN)

    with pytest.raises(GitOpsError, match="moved"):
        repo.update_branch("scaffold/s", first, service_files("s"), "Revision 2 again", ANN)
    with pytest.raises(FileExistsOnMainError):
        repo.update_branch("scaffold/s", second, {"README.md": b"x"}, "Touch main's file", ANN)
    with pytest.raises(RefNotFoundError):
        repo.update_branch("scaffold/none", first, service_files("s"), "No branch", ANN)
    repo.merge("scaffold/s", "Merge s", REX)
    with pytest.raises(GitOpsError, match="already merged"):
        repo.update_branch("scaffold/s", second, service_files("s"), "Too late", ANN)


def test_head_of_asks_the_remote_and_fetches_what_another_replica_pushed(
    tmp_path: Path, settings: Settings, repo: GitOpsRepo
) -> None:
    first = repo.create_branch("scaffold/h", service_files("h"), "Add h", ANN)
    other = bootstrap_gitops(make_settings(tmp_path / "replica", remote_dir(settings).as_uri()))
    second = other.update_branch("scaffold/h", first, service_files("h"), "Revision: 2", ANN)

    assert repo.head_of("scaffold/h") == second  # not this clone's stale view
    assert "Revision: 2" in repo.message_of(second)
    assert repo.head_of("scaffold/none") is None


# create_edit_branch with deletions, revise_edit_branch (a template update's resolution) ---


def test_an_edit_branch_deletes_files_and_a_revision_writes_over_its_head(
    settings: Settings, repo: GitOpsRepo
) -> None:
    repo.create_branch("scaffold/u", service_files("u"), "Add u", ANN)
    repo.merge("scaffold/u", "Merge u", REX)
    base = repo.refresh()
    app = "services/u/app.py"
    [gone] = [path for path in service_files("u") if "prod" in path]
    with pytest.raises(GitOpsError, match="both written and deleted"):
        repo.create_edit_branch("update/u/1", base, {app: b"x\n"}, "Update u", ANN, deleted=[app])
    first = repo.create_edit_branch(
        "update/u/1", base, {app: b"<<<<<<< before updating\n"}, "Update u", ANN, deleted=[gone]
    )
    assert gone not in repo.list_files(first)

    second = repo.revise_edit_branch(
        "update/u/1", first, {app: b"print('resolved')\n"}, "Resolve\n\nRevision: 2", ANN
    )

    parents = git("--git-dir", str(remote_dir(settings)), "rev-parse", f"{second}^@").split()
    assert parents == [base, first], "first parent: the base; second: the previous revision"
    assert repo.read_file(second, app) == b"print('resolved')\n"
    assert gone not in repo.list_files(second), "the update's deletion is kept"
    assert repo.changed_files(second, base=base) == sorted([app, gone])
    with pytest.raises(GitOpsError, match="moved to"):
        repo.revise_edit_branch("update/u/1", first, {app: b"late\n"}, "Late", ANN)
    with pytest.raises(
        GitOpsError, match=r"services/u/nope is not a file of .*: nothing to delete"
    ):
        repo.revise_edit_branch("update/u/1", second, {}, "Drop", ANN, deleted=["services/u/nope"])
    assert remote_sha(settings, "refs/heads/update/u/1") == second
