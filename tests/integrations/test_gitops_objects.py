"""How the GitOps writer stores a change: one pack each way, any path, root commits."""

from __future__ import annotations

from pathlib import Path

from portal.config import Settings
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_plumbing import write_commit
from tests.integrations.gitops_support import ANN, git, remote_dir, service_files


def loose_objects(git_dir: Path) -> int:
    counts = dict(
        line.split(": ")
        for line in git("--git-dir", str(git_dir), "count-objects", "-v").splitlines()
    )
    return int(counts["count"])


def test_a_branch_is_written_and_pushed_as_packs_with_any_path(
    settings: Settings, repo: GitOpsRepo
) -> None:
    files = {
        "services/odd/with space.txt": b"a",
        'services/odd/"quoted".txt': b"b",
        "services/odd/\u00fcml\u00e4ut.txt": "ü".encode(),
        "services/odd/empty": b"",
    }
    before = loose_objects(repo.git_dir), loose_objects(remote_dir(settings))

    sha = repo.create_branch("scaffold/odd", files, "Add odd", ANN)

    for path, content in files.items():
        assert repo.read_file(sha, path) == content
    # One pack each way: as loose objects every blob and tree would be a file of its own.
    assert (loose_objects(repo.git_dir), loose_objects(remote_dir(settings))) == before
    assert git("--git-dir", str(remote_dir(settings)), "for-each-ref", "refs/portal") == ""


def test_a_commit_without_parents_is_a_root_commit_after_other_writes(repo: GitOpsRepo) -> None:
    repo.create_branch("scaffold/first", service_files("first"), "Add first", ANN)
    sha = write_commit(repo.git_dir, [], {"a.txt": b"a"}, "Root", (ANN, ANN))
    assert git("--git-dir", str(repo.git_dir), "rev-list", "--parents", "-n", "1", sha) == sha
    assert git("--git-dir", str(repo.git_dir), "ls-tree", "--name-only", sha) == "a.txt"
