"""The folder history reader: GitPython on a real bare repository, and its fake, alike."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal.integrations.git_args import GitArgumentError
from portal.integrations.git_history import (
    FakeFolderHistory,
    FolderCommit,
    FolderHistory,
    GitPythonHistory,
    HistoryError,
    check_commit,
)


def git(work: Path, *args: str, author: str = "Ann Author") -> str:
    env = {
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": "ann@example.org",
        "GIT_COMMITTER_NAME": "Portal",
        "GIT_COMMITTER_EMAIL": "portal@example.org",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(work),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        ["git", *args], cwd=work, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


def write(work: Path, path: str, text: str) -> None:
    target = work / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


@dataclass(frozen=True)
class Scenario:
    """A bare repository: main has c1 (a and b), c2 (b), m1 (merge of f1: a), c3 (a)."""

    bare: Path
    head: str
    c1: str
    c2: str
    f1: str  # the branch commit m1 merged: reachable from main, not on its first parents
    m1: str
    c3: str
    s1: str  # a commit changing a on a branch never merged


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    work = tmp_path_factory.mktemp("history") / "work"
    work.mkdir()
    git(work, "init", "--quiet", "--initial-branch=main")
    write(work, "services/a/x", "1\n")
    write(work, "services/b/y", "1\n")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "Add a and b")
    c1 = git(work, "rev-parse", "HEAD")
    write(work, "services/b/y", "2\n")
    git(work, "commit", "--quiet", "-am", "Change b", author="Bob Other")
    c2 = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "--quiet", "-b", "feature")
    write(work, "services/a/x", "2\n")
    git(work, "commit", "--quiet", "-am", "Change a on a branch")
    f1 = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "--quiet", "main")
    git(work, "merge", "--quiet", "--no-ff", "-m", "Merge feature", "feature")
    m1 = git(work, "rev-parse", "HEAD")
    write(work, "services/a/x", "3\n")
    git(work, "commit", "--quiet", "-am", "Change a on main")
    c3 = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "--quiet", "-b", "side", c2)
    write(work, "services/a/x", "side\n")
    git(work, "commit", "--quiet", "-am", "Never merged")
    s1 = git(work, "rev-parse", "HEAD")
    bare = work.parent / "bare.git"
    git(work.parent, "clone", "--quiet", "--bare", "--", str(work), str(bare))
    git(bare, "fetch", "--quiet", "--", str(work), "side")  # s1 is in the bare repository too
    return Scenario(bare, c3, c1, c2, f1, m1, c3, s1)


def real(scenario: Scenario) -> FolderHistory:
    return GitPythonHistory(scenario.bare, timeout=30)


def fake(scenario: Scenario) -> FolderHistory:
    """The fake holding what the real repository has, as unit tests would write it."""
    reader = GitPythonHistory(scenario.bare)
    a = reader.log(scenario.head, "services/a", skip=0, limit=10)
    b = reader.log(scenario.head, "services/b", skip=0, limit=10)
    by_sha = {commit.sha: commit for commit in a + b}
    order = [scenario.c3, scenario.m1, scenario.c2, scenario.c1]
    stored = []
    for sha in order:
        commit = by_sha[sha]
        folders = [path for path, log in (("services/a", a), ("services/b", b)) if commit in log]
        stored.append((commit, {path: reader.diff(commit, path) for path in folders}))
    return FakeFolderHistory({scenario.head: stored})


Reader = Callable[[Scenario], FolderHistory]
READERS = [pytest.param(real, id="gitpython"), pytest.param(fake, id="fake")]


@pytest.mark.parametrize("make", READERS)
def test_log_lists_first_parent_commits_of_the_folder_newest_first(
    scenario: Scenario, make: Reader
) -> None:
    reader = make(scenario)
    a = reader.log(scenario.head, "services/a", skip=0, limit=10)
    # The merge stands for its branch: f1 is not listed, and b's own commit neither.
    assert [commit.sha for commit in a] == [scenario.c3, scenario.m1, scenario.c1]
    b = reader.log(scenario.head, "services/b/", skip=0, limit=10)
    assert [commit.sha for commit in b] == [scenario.c2, scenario.c1]
    first = a[0]
    assert (first.subject, first.author_name, first.parent) == (
        "Change a on main",
        "Ann Author",
        scenario.m1,
    )
    assert a[-1].parent is None  # the root commit
    assert b[0].author_name == "Bob Other"
    assert first.authored_at.utcoffset() == timedelta(0)  # pages show UTC


@pytest.mark.parametrize("make", READERS)
def test_log_pages_with_skip_and_limit(scenario: Scenario, make: Reader) -> None:
    reader = make(scenario)
    pages = [reader.log(scenario.head, "services/a", skip=skip, limit=1) for skip in range(4)]
    assert [[c.sha for c in page] for page in pages] == [
        [scenario.c3],
        [scenario.m1],
        [scenario.c1],
        [],
    ]
    two = reader.log(scenario.head, "services/a", skip=1, limit=2)
    assert [c.sha for c in two] == [scenario.m1, scenario.c1]


@pytest.mark.parametrize("make", READERS)
def test_find_takes_an_abbreviated_commit_that_changes_the_folder(
    scenario: Scenario, make: Reader
) -> None:
    reader = make(scenario)
    found = reader.find(scenario.head, "services/a", scenario.m1[:7].upper())
    assert found is not None and found.sha == scenario.m1
    assert reader.find(scenario.head, "services/a", scenario.c2) is None  # only b changed
    assert reader.find(scenario.head, "services/a", "0000000") is None


def test_find_refuses_a_commit_that_is_not_on_main(scenario: Scenario) -> None:
    reader = real(scenario)
    assert reader.find(scenario.head, "services/a", scenario.s1) is None
    # Reachable from main through the merge: its own diff of the folder is main's history.
    branch = reader.find(scenario.head, "services/a", scenario.f1)
    assert branch is not None and branch.parent == scenario.c2


@pytest.mark.parametrize("make", READERS)
def test_diff_is_the_folder_against_the_first_parent(scenario: Scenario, make: Reader) -> None:
    reader = make(scenario)
    by_sha = {c.sha: c for c in reader.log(scenario.head, "services/a", skip=0, limit=10)}
    merge = reader.diff(by_sha[scenario.m1], "services/a")
    assert "diff --git a/services/a/x b/services/a/x" in merge
    assert "\n-1\n+2\n" in merge
    root = reader.diff(by_sha[scenario.c1], "services/a")
    assert "new file mode" in root and "+1\n" in root
    assert "services/b" not in root  # only the folder asked for


def test_values_that_git_could_misread_are_refused(scenario: Scenario) -> None:
    reader = real(scenario)
    for folder in ("-x", "--output=owned", "../outside", "/services/a"):
        with pytest.raises(GitArgumentError, match="folder"):
            reader.log(scenario.head, folder, skip=0, limit=1)
    for head in ("main", "-n", scenario.head[:12]):
        with pytest.raises(GitArgumentError, match="head"):
            reader.log(head, "services/a", skip=0, limit=1)
    for commit in ("--output=x", "abc", "g" * 7, "a" * 41, "HEAD~1"):
        with pytest.raises(GitArgumentError, match="7 to 40 hexadecimal"):
            reader.find(scenario.head, "services/a", commit)
    with pytest.raises(ValueError, match="skip"):
        reader.log(scenario.head, "services/a", skip=-1, limit=1)


def test_check_commit_lower_cases_and_bounds_the_length() -> None:
    assert check_commit("ABCDEF0") == "abcdef0"
    assert check_commit("a" * 40) == "a" * 40
    with pytest.raises(GitArgumentError):
        check_commit("abcdef")


def test_a_missing_repository_is_a_history_error(tmp_path: Path) -> None:
    reader = GitPythonHistory(tmp_path / "nothing.git")
    with pytest.raises(HistoryError, match="cannot open"):
        reader.log("a" * 40, "services/a", skip=0, limit=1)


def test_fake_records_calls_and_refuses_unknown_diffs() -> None:
    commit = FolderCommit(
        "b" * 40, None, "Add", "Ann", "ann@example.org", datetime(2026, 1, 1, tzinfo=UTC)
    )
    calls: list[tuple[str, ...]] = []
    reader = FakeFolderHistory({"c" * 40: [(commit, {"services/a": "diff"})]}, calls)
    assert reader.log("c" * 40, "services/a", skip=0, limit=5) == [commit]
    assert reader.log("c" * 40, "services/z", skip=0, limit=5) == []
    assert calls[0] == ("log", "c" * 40, "services/a", "0", "5")
    with pytest.raises(HistoryError):
        reader.diff(commit, "services/z")


def test_git_children_never_hold_the_portals_secrets(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitPython copies os.environ into every child: the portal's settings are blanked."""
    monkeypatch.setenv("PORTAL_SECRET_KEY", "session-signing-secret")
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql://u:db-password@h/p")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    repo = GitPythonHistory(scenario.bare)._repo()
    # A shell alias makes git print the environment its own children inherit.
    seen = repo.git.execute(["git", "-c", "alias.showenv=!env", "showenv"])
    assert isinstance(seen, str) and "PATH=" in seen
    for secret in ("session-signing-secret", "db-password", "aws-secret"):
        assert secret not in seen
    assert "GIT_TERMINAL_PROMPT=0" in seen
