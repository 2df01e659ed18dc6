"""The history of one folder of a git repository, read with GitPython: its log and diffs.

Read-only and lock-free, like every read of the portal's GitOps clone: fetches arrive as
one pack each (``fetch.unpackLimit 1``, see :mod:`portal.integrations.gitops_bootstrap`),
so a commit found here has its trees and blobs. Every value reaches git checked (a commit
is hexadecimal, a folder a relative path) and the folder only after ``--``.

The log follows first parents: on ``main`` each entry is then the merge that landed a
change (or a commit made on ``main`` itself), not the branch commits under it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from git import Repo
from git.exc import GitCommandError
from git.exc import GitError as GitPythonError

from portal.integrations.git import GitError, git_env
from portal.integrations.git_args import GitArgumentError, check_repo_path

# An abbreviated or full commit name as people copy it from a log (git's own minimum is 4;
# seven is what `git log --oneline` shows). The GitOps repository uses SHA-1 names.
_COMMIT = re.compile(r"[0-9a-f]{7,40}")
_FULL = re.compile(r"[0-9a-f]{40}")
_DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "--no-textconv", "--no-renames")


class HistoryError(GitError):
    """Git could not answer a history read (not: the commit is unknown, which is None)."""


@dataclass(frozen=True)
class FolderCommit:
    """One commit of a folder's log: who wrote it, when, and its subject line."""

    sha: str
    parent: str | None  # the first parent; None for a root commit
    subject: str
    author_name: str
    author_email: str
    authored_at: datetime  # in UTC

    @property
    def short(self) -> str:
        """Return the abbreviated sha the pages show."""
        return self.sha[:10]


class FolderHistory(Protocol):
    """Reads the log of one folder at one commit, and one commit's diff of that folder."""

    def log(self, head: str, folder: str, *, skip: int, limit: int) -> list[FolderCommit]:
        """Return up to ``limit`` commits touching ``folder``, newest first, after ``skip``."""
        ...

    def find(self, head: str, folder: str, commit: str) -> FolderCommit | None:
        """Return ``commit`` (7 to 40 hex digits) if it is in ``head``'s history of ``folder``."""
        ...

    def diff(self, commit: FolderCommit, folder: str) -> str:
        """Return the unified diff of ``folder`` from the commit's first parent to it."""
        ...


def check_commit(value: str, what: str = "commit") -> str:
    """Return ``value`` lower-cased if it is 7 to 40 hexadecimal digits; else refuse it."""
    lowered = value.lower()
    if not _COMMIT.fullmatch(lowered):
        raise GitArgumentError(
            f"{what} {value[:80]!r} is refused: expected 7 to 40 hexadecimal characters"
        )
    return lowered


def check_folder(folder: str) -> str:
    """Return ``folder`` without its trailing ``/`` if git may be given it as a path."""
    return check_repo_path(folder.rstrip("/"), "folder")


def _check_head(head: str) -> str:
    if not _FULL.fullmatch(head):
        raise GitArgumentError(f"head {head[:80]!r} is refused: expected a full commit sha")
    return head


class GitPythonHistory:
    """:class:`FolderHistory` of a repository on disk (bare or not), through GitPython.

    Each read opens the repository and closes it again (GitPython keeps ``cat-file``
    processes per open repository), so one instance serves concurrent requests.
    """

    def __init__(self, git_dir: Path, *, timeout: float = 30) -> None:
        self.git_dir = git_dir
        self.timeout = timeout  # seconds a listing or diff may take before git is killed

    def log(self, head: str, folder: str, *, skip: int, limit: int) -> list[FolderCommit]:
        """Return up to ``limit`` commits touching ``folder`` on ``head``'s first parents."""
        head, path = _check_head(head), check_folder(folder)
        if skip < 0 or limit < 1:
            raise ValueError("skip must be 0 or more and limit 1 or more")
        args = ("--first-parent", f"--skip={skip}", f"--max-count={limit}")
        with self._repo() as repo:
            listing = self._git(repo, "rev-list", *args, "--end-of-options", head, "--", path)
            return [_commit_of(repo, sha) for sha in listing.split()]

    def find(self, head: str, folder: str, commit: str) -> FolderCommit | None:
        """Return the commit if it is an ancestor of ``head`` and changes ``folder``."""
        head, path, wanted = _check_head(head), check_folder(folder), check_commit(commit)
        with self._repo() as repo:
            # Unknown and ambiguous abbreviations fail --verify alike: both are "not found".
            verify = ("--verify", "--quiet", "--end-of-options", f"{wanted}^{{commit}}")
            verified = self._run(repo, "rev-parse", *verify, missing=(1, 128))
            if verified is None:
                return None
            sha = verified.strip()
            ancestor = ("--is-ancestor", "--end-of-options", sha, head)
            if self._run(repo, "merge-base", *ancestor, missing=(1,)) is None:
                return None
            found = _commit_of(repo, sha)
            base = found.parent or _empty_tree(repo)
            changed = self._git(repo, "diff", "--name-only", base, sha, "--", path)
            return found if changed.strip() else None

    def diff(self, commit: FolderCommit, folder: str) -> str:
        """Return ``git diff`` of ``folder`` between the commit's first parent and it."""
        sha, path = _check_head(commit.sha), check_folder(folder)
        with self._repo() as repo:
            base = _check_head(commit.parent) if commit.parent else _empty_tree(repo)
            return self._git(repo, "diff", *_DIFF_OPTIONS, base, sha, "--", path)

    def _repo(self) -> Repo:
        try:
            repo = Repo(self.git_dir)
        except (GitPythonError, OSError) as exc:
            raise HistoryError(f"cannot open the repository at {self.git_dir}: {exc}") from exc
        # Every git this repository starts (cat-file included) runs in child_env().
        repo.git.update_environment(**child_env())
        return repo

    def _git(self, repo: Repo, command: str, *args: str) -> str:
        """Run one git command in ``repo``, bounded by the timeout; return its output."""
        return self._run(repo, command, *args) or ""

    def _run(
        self, repo: Repo, command: str, *args: str, missing: tuple[int, ...] = ()
    ) -> str | None:
        """Run one git command; an exit status in ``missing`` ("no such thing") is None."""
        try:
            output = repo.git.execute(
                ["git", command, *args],
                kill_after_timeout=self.timeout,
                strip_newline_in_stdout=False,
            )
        except GitCommandError as exc:
            if exc.status in missing:
                return None
            raise HistoryError(f"git {command} failed: {exc.stderr.strip() or exc}") from exc
        except GitPythonError as exc:
            raise HistoryError(f"git {command} failed: {exc}") from exc
        return str(output)


def child_env() -> dict[str, str]:
    """Return what GitPython's git children get on top of this process's environment.

    GitPython starts each child from a copy of ``os.environ``: every variable ``git_env``
    leaves out (the portal's settings and secrets) is blanked, so no child holds their
    values, and the rest is git's usual environment (no prompts, C locale).
    """
    env = git_env()
    return {**{name: "" for name in os.environ if name not in env}, **env}


def _commit_of(repo: Repo, sha: str) -> FolderCommit:
    commit = repo.commit(sha)
    subject = commit.summary if isinstance(commit.summary, str) else commit.summary.decode()
    return FolderCommit(
        sha=commit.hexsha,
        parent=commit.parents[0].hexsha if commit.parents else None,
        subject=subject,
        author_name=commit.author.name or "",
        author_email=commit.author.email or "",
        authored_at=commit.authored_datetime.astimezone(UTC),
    )


def _empty_tree(repo: Repo) -> str:
    """Return the empty tree's name (what a root commit is compared with) in this repository."""
    # Without -w, hash-object only computes the name; git knows the empty tree without it.
    name: str = repo.git.hash_object("-t", "tree", "--", os.devnull)
    return name.strip()


@dataclass
class FakeFolderHistory:
    """In-memory :class:`FolderHistory` for unit tests: each head's commits, newest first.

    ``commits[head]`` lists ``(commit, {folder: diff})``; a commit touches the folders its
    mapping names. Calls are recorded in ``calls`` so tests can see what was asked.
    """

    commits: Mapping[str, Sequence[tuple[FolderCommit, Mapping[str, str]]]]
    calls: list[tuple[str, ...]] | None = None

    def _touching(self, head: str, folder: str) -> list[tuple[FolderCommit, Mapping[str, str]]]:
        path = check_folder(folder)
        return [item for item in self.commits.get(_check_head(head), ()) if path in item[1]]

    def _record(self, *call: str) -> None:
        if self.calls is not None:
            self.calls.append(call)

    def log(self, head: str, folder: str, *, skip: int, limit: int) -> list[FolderCommit]:
        """Return the stored commits touching ``folder``, as the real log pages them."""
        self._record("log", head, folder, str(skip), str(limit))
        return [commit for commit, _ in self._touching(head, folder)[skip : skip + limit]]

    def find(self, head: str, folder: str, commit: str) -> FolderCommit | None:
        """Return the one stored commit touching ``folder`` whose sha starts with ``commit``."""
        wanted = check_commit(commit)
        self._record("find", head, folder, wanted)
        found = [c for c, _ in self._touching(head, folder) if c.sha.startswith(wanted)]
        return found[0] if len(found) == 1 else None

    def diff(self, commit: FolderCommit, folder: str) -> str:
        """Return the stored diff of ``folder`` for ``commit``."""
        path = check_folder(folder)
        for head_commits in self.commits.values():
            for stored, diffs in head_commits:
                if stored.sha == commit.sha and path in diffs:
                    return diffs[path]
        raise HistoryError(f"no diff of {path} stored for {commit.sha}")
