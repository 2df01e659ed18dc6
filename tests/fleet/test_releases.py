"""A template's versions and the changelog between two of them, on real git repositories."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from portal.fleet.releases import (
    LogEntry,
    UnknownRefError,
    changelog,
    commit_count,
    template_versions,
    versions_after,
)
from portal.integrations.git import GitError
from portal.integrations.git_args import GitArgumentError
from tests.fleet.template_history import BASE, DAY, commit, day, git


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A repository: v0.9.0, two commits, v0.10.0 (annotated), a commit, 1.0.0, and noise.

    Returns the repository and its commits by name.
    """
    repo = tmp_path / "template"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(repo))
    c = {"first": commit(repo, "Start the template", {"README.md": "one\n"}, BASE)}
    git(repo, "tag", "v0.9.0")
    c["fix"] = commit(
        repo,
        "Fix the probe path\n\nThe probe asked /health;\nthe service serves /healthz.\x1fbody",
        {"README.md": "two\n"},
        BASE + DAY,
    )
    c["docs"] = commit(repo, "Document the port", {"PORT.md": "8080\n"}, BASE + 2 * DAY)
    git(repo, "tag", "--annotate", "-m", "release 0.10", "v0.10.0", date=BASE + 9 * DAY)
    c["later"] = commit(repo, "Add a question", {"q.txt": "q\n"}, BASE + 3 * DAY)
    c["release"] = commit(repo, "Release 1.0", {"one.txt": "1\n"}, BASE + 4 * DAY)
    git(repo, "tag", "1.0.0")
    # Tags that are no versions: a registered mirror's pin, words, a version of a tree.
    git(repo, "tag", f"pinned/{c['docs']}", c["docs"])
    git(repo, "tag", "latest", c["first"])
    git(repo, "tag", "vnext", c["first"])
    git(repo, "tag", "v9.9.9", f"{c['release']}^{{tree}}")
    # A side branch off v0.9.0 that no version contains.
    git(repo, "checkout", "--quiet", "-b", "side", c["first"])
    c["side"] = commit(repo, "An experiment", {"side.txt": "x\n"}, BASE + 5 * DAY)
    git(repo, "checkout", "--quiet", "main")
    return repo, c


def test_versions_are_ordered_as_versions_and_other_tags_are_left_out(
    history: tuple[Path, dict[str, str]],
) -> None:
    repo, c = history
    versions = template_versions(repo)
    assert [v.tag for v in versions] == ["1.0.0", "v0.10.0", "v0.9.0"]
    assert [v.version for v in versions] == ["1.0.0", "0.10.0", "0.9.0"]
    assert [v.commit for v in versions] == [c["release"], c["docs"], c["first"]]
    # The commit's date, in UTC: not the annotated tag's own date (day 9).
    assert [v.date for v in versions] == [day(4), day(2), day(0)]
    assert versions[0].date.tzinfo == UTC


def test_a_bare_repository_has_the_same_versions(
    history: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    repo, _ = history
    bare = tmp_path / "published.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo), str(bare))
    assert template_versions(bare) == template_versions(repo)


def test_a_folder_that_is_no_repository_is_not_read_as_the_one_around_it(
    history: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    repo, _ = history
    inside = repo / "docs"
    inside.mkdir()
    with pytest.raises(GitError, match="not a git repository"):
        template_versions(inside)
    with pytest.raises(GitError, match="not a git repository"):
        changelog(inside, "v0.9.0", "1.0.0")
    empty = tmp_path / "empty"
    git(tmp_path, "init", "--quiet", str(empty))
    assert template_versions(empty) == []


def test_versions_after_a_tag_are_the_higher_numbers(
    history: tuple[Path, dict[str, str]],
) -> None:
    repo, _ = history
    versions = template_versions(repo)
    assert [v.tag for v in versions_after(repo, versions, "v0.9.0")] == ["1.0.0", "v0.10.0"]
    assert [v.tag for v in versions_after(repo, versions, "v0.10.0")] == ["1.0.0"]
    assert versions_after(repo, versions, "1.0.0") == []


def test_versions_after_a_commit_are_those_that_descend_from_it(
    history: tuple[Path, dict[str, str]],
) -> None:
    repo, c = history
    versions = template_versions(repo)

    def after(recorded: str) -> list[str]:
        return [v.tag for v in versions_after(repo, versions, recorded)]

    assert after(c["first"]) == ["1.0.0", "v0.10.0"]  # the version at the commit itself is not
    assert after(c["fix"]) == ["1.0.0", "v0.10.0"]
    assert after(c["later"]) == ["1.0.0"]
    assert after(c["release"]) == []
    # Copier's `git describe` of a commit past a tag.
    assert after(f"v0.10.0-1-g{c['later'][:7]}") == ["1.0.0"]
    # A commit off to the side: no version contains it, so it is behind none.
    assert after(c["side"]) == []


def test_versions_after_a_tag_the_repository_no_longer_has(
    history: tuple[Path, dict[str, str]],
) -> None:
    repo, c = history
    git(repo, "tag", "--delete", "v0.10.0")
    versions = template_versions(repo)
    assert [v.tag for v in versions] == ["1.0.0", "v0.9.0"]
    # Placed by its number: the versions numbered higher.
    assert [v.tag for v in versions_after(repo, versions, "v0.10.0")] == ["1.0.0"]
    assert [v.tag for v in versions_after(repo, versions, "v0.9.5")] == ["1.0.0"]
    # A name that is no version, or a commit the repository lacks: unknown, not "0 behind".
    with pytest.raises(UnknownRefError, match="'release-candidate' is not a commit"):
        versions_after(repo, versions, "release-candidate")
    with pytest.raises(UnknownRefError):
        versions_after(repo, versions, "f" * 40)
    with pytest.raises(GitArgumentError, match="may not start with '-'"):
        versions_after(repo, versions, "--all")
    assert c["docs"]  # the commit is still there, only its tag is gone


def test_the_changelog_lists_exactly_the_commits_between_two_tags(
    history: tuple[Path, dict[str, str]],
) -> None:
    repo, c = history
    entries = changelog(repo, "v0.9.0", "v0.10.0")
    assert entries == [
        LogEntry(c["docs"], c["docs"][:7], "Document the port", "", "Tem Plate", day(2)),
        LogEntry(
            c["fix"],
            c["fix"][:7],
            "Fix the probe path",
            "The probe asked /health;\nthe service serves /healthz.\x1fbody",
            "Tem Plate",
            day(1),
        ),
    ]
    assert [e.subject for e in changelog(repo, "v0.10.0", "1.0.0")] == [
        "Release 1.0",
        "Add a question",
    ]
    assert [e.sha for e in changelog(repo, c["first"], c["release"], limit=1)] == [c["release"]]
    assert commit_count(repo, "v0.9.0", "1.0.0") == 4
    assert changelog(repo, "1.0.0", "v0.9.0") == []  # nothing of the older is new


def test_the_changelog_names_a_ref_the_repository_lacks(
    history: tuple[Path, dict[str, str]],
) -> None:
    repo, _ = history
    with pytest.raises(UnknownRefError, match=r"to ref 'v2\.0\.0' is not a commit of template"):
        changelog(repo, "v0.9.0", "v2.0.0")
    with pytest.raises(ValueError, match="limit"):
        changelog(repo, "v0.9.0", "1.0.0", limit=0)


HOSTILE_REFS = ["--output=OUT", "v0.9.0..1.0.0", "v1\x00--all", "-n", "HEAD@{1}", "main~1", ""]


@pytest.fixture
def no_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make git impossible to start: any call that reaches it fails with FileNotFoundError."""
    empty = tmp_path / "no-git"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return tmp_path / "OUT"


@pytest.mark.parametrize("ref", HOSTILE_REFS)
def test_a_hostile_ref_is_refused_before_git_runs(
    history: tuple[Path, dict[str, str]], no_git: Path, ref: str
) -> None:
    repo, _ = history
    hostile = ref.replace("OUT", str(no_git))
    for call in (
        lambda: changelog(repo, hostile, "1.0.0"),
        lambda: changelog(repo, "v0.9.0", hostile),
        lambda: commit_count(repo, hostile, "1.0.0"),
        lambda: versions_after(repo, [], hostile),
    ):
        with pytest.raises(GitArgumentError, match=r"(ref|version) .* is refused"):
            call()
    assert not no_git.exists()
