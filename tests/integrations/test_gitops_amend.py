"""The portal's own amendments of existing files beside a scaffold's added files, on real git."""

from __future__ import annotations

import pytest

from portal.config import Settings
from portal.integrations.gitops import FileExistsOnMainError, GitOpsError, GitOpsRepo
from tests.integrations.gitops_support import ANN, REX, git, remote_dir, service_files


def append_line(content: bytes) -> bytes:
    return content + b"appended by the portal\n"


def changed_paths(settings: Settings, sha: str) -> list[str]:
    output = git("--git-dir", str(remote_dir(settings)), "diff-tree", "-r", "--name-status", sha)
    return sorted(line for line in output.splitlines() if "\t" in line)


def test_an_amended_file_is_modified_beside_the_added_ones(
    settings: Settings, repo: GitOpsRepo
) -> None:
    before = repo.read_file("main", "README.md")
    files = service_files("alpha")

    sha = repo.create_branch("scaffold/alpha", files, "m", ANN, amend={"README.md": append_line})

    assert repo.read_file(sha, "README.md") == before + b"appended by the portal\n"
    assert repo.read_file("main", "README.md") == before, "main is untouched until a merge"
    assert changed_paths(settings, sha) == sorted(
        [*(f"A\t{path}" for path in files), "M\tREADME.md"]
    )


def test_an_amendment_that_changes_nothing_or_names_a_missing_file_is_left_out(
    settings: Settings, repo: GitOpsRepo
) -> None:
    files = service_files("beta")
    amend = {"README.md": lambda content: None, "absent.txt": append_line}

    sha = repo.create_branch("scaffold/beta", files, "m", ANN, amend=amend)

    assert changed_paths(settings, sha) == sorted(f"A\t{path}" for path in files)


def test_an_amendment_never_lets_a_change_replace_a_file_it_adds(repo: GitOpsRepo) -> None:
    # The template's files only ever add: naming one of main's files is still refused.
    with pytest.raises(FileExistsOnMainError, match=r"already has README\.md"):
        repo.create_branch(
            "scaffold/gamma", {"README.md": b"mine"}, "m", ANN, amend={"README.md": append_line}
        )


def test_a_revision_amends_the_file_as_it_is_on_its_base(
    settings: Settings, repo: GitOpsRepo
) -> None:
    first = repo.create_branch(
        "scaffold/r", service_files("r"), "m", ANN, amend={"README.md": append_line}
    )
    # main's README moves on meanwhile; the revision is still built on the branch's base.
    other = repo.create_edit_branch(
        "edit/readme", repo.resolve("main"), {"README.md": b"rewritten\n"}, "m", ANN
    )
    repo.merge("edit/readme", "Merge", REX)
    assert other

    second = repo.update_branch(
        "scaffold/r",
        first,
        service_files("r"),
        "m\n\nRevision: 2",
        ANN,
        amend={"README.md": append_line},
    )

    assert repo.read_file(second, "README.md") == repo.read_file(first, "README.md")
    with pytest.raises(GitOpsError, match="conflict"):
        repo.merge("scaffold/r", "Merge r", REX)
