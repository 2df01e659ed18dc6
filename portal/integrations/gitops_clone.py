"""The portal's clone of the GitOps repository: construction, bounds and reads.

The clone is bare on purpose: nothing here needs a checkout, and a checkout shared by
concurrent requests would be one more thing to keep consistent. Writes are
:class:`portal.integrations.gitops.GitOpsRepo`'s.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from portal.integrations.git_args import (
    GitArgumentError,
    check_branch,
    check_ref,
    check_repo_path,
)
from portal.integrations.gitops_plumbing import (
    Author,
    GitOpsError,
    RefNotFoundError,
    RemoteUrl,
    checked_identity,
    checked_path,
    exclusive,
    is_sha,
    object_types,
    out,
    run,
)


def checked(check: Callable[[str, str], str], value: str, what: str) -> str:
    """Run one :mod:`~portal.integrations.git_args` check, refusing as a ``GitOpsError``."""
    try:
        return check(value, what)
    except GitArgumentError as exc:
        raise GitOpsError(str(exc)) from None


class GitOpsClone:
    """A bare clone of the GitOps remote and what can be read from it.

    Reads use what the clone last fetched (call :meth:`refresh` for the newest ``main``);
    a branch the clone has not seen yet is fetched on first use. Every ref and path given
    to a method is checked before it reaches git (see :mod:`portal.integrations.git_args`).
    """

    def __init__(
        self,
        git_dir: Path,
        *,
        remote_url: str,
        main: str = "main",
        committer: Author = ("Platform portal", "portal@platform.invalid"),
        merge_attempts: int = 20,
    ) -> None:
        # Absolute, because Copier and other libraries may change the working directory.
        self.git_dir = git_dir.resolve()
        self.main = checked(check_branch, main, "main branch")
        self.committer = checked_identity(committer)
        # Each failed attempt means another writer's merge landed, so this bounds how
        # many merges may overtake one of ours before the caller is told to retry.
        self.merge_attempts = merge_attempts
        self._remote = RemoteUrl.parse(remote_url)
        self._lock_file = self.git_dir / "portal-write.lock"
        # Seconds a command that talks to the remote, and a wait for the lock, may take.
        self.remote_timeout: float = 120
        self.lock_timeout: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.git_dir)!r}, remote={self._remote.public!r})"

    def bounded(self, timeout: float) -> Self:
        """Return this clone with remote commands and lock waits limited to ``timeout`` s.

        For request threads: a remote that is down or hung, or a clone another writer holds
        for longer, then raises :class:`GitOpsUnavailableError` instead of waiting.
        """
        repo = copy.copy(self)
        repo.remote_timeout = min(timeout, self.remote_timeout)
        repo.lock_timeout = (
            timeout if self.lock_timeout is None else min(timeout, self.lock_timeout)
        )
        return repo

    @property
    def public_url(self) -> str:
        """Return the remote's URL without credentials (safe to store and show)."""
        return self._remote.public

    # reads -------------------------------------------------------------------------

    def refresh(self) -> str:
        """Fetch every branch from the remote and return the sha of ``main``."""
        with self._exclusive():
            return self._fetch_main()

    def resolve(self, ref: str) -> str:
        """Return the commit sha of a branch name (as on the remote) or a full sha."""
        checked(check_ref, ref, "ref")
        sha = self._lookup(ref)
        if sha is None:
            self.refresh()
            sha = self._lookup(ref)
        if sha is None:
            raise RefNotFoundError(f"no branch or commit {ref!r} in the GitOps repository")
        return sha

    def parent_of(self, commit: str) -> str:
        """Return the first parent of a commit (the ``main`` a change's commit was built on)."""
        sha = self.resolve(commit)
        result = run(
            self.git_dir,
            *("rev-parse", "--verify", "--quiet", "--end-of-options", f"{sha}^1^{{commit}}"),
            ok=(0, 1),
        )
        if result.returncode != 0:
            raise RefNotFoundError(f"commit {sha} has no parent in the GitOps repository")
        return result.stdout.decode().strip()

    def branch_exists(self, branch: str) -> bool:
        """Ask the remote itself whether ``branch`` exists."""
        return self.head_of(branch) is not None

    def head_of(self, branch: str) -> str | None:
        """Ask the remote for the head of ``branch`` (None: no such branch).

        The clone's own view may be stale (another replica pushed a revision); the commit
        is fetched when the clone does not have it yet, so it can be read at once.
        """
        checked(check_branch, branch, "branch")
        listing = self._remote_out("ls-remote", "--heads", "origin", f"refs/heads/{branch}")
        if not listing:
            return None
        sha = listing.split()[0]
        if self._lookup(sha) is None:
            self.refresh()
        return sha

    def read_file(self, ref: str, path: str) -> bytes:
        """Return the bytes of ``path`` at ``ref``."""
        sha = self.resolve(ref)
        found = object_types(self.git_dir, sha, [checked_path(path)])
        if found.get(path) != "blob":
            raise RefNotFoundError(f"{path} is not a file at {ref}")
        return run(self.git_dir, "cat-file", "blob", "--end-of-options", f"{sha}:{path}").stdout

    def list_files(self, ref: str, prefix: str = "") -> list[str]:
        """Return the sorted file paths at ``ref``, limited to the directory ``prefix``."""
        sha = self.resolve(ref)
        pathspec = [checked_path(prefix.rstrip("/"))] if prefix.strip("/") else []
        listing = run(
            self.git_dir,
            # No "--" after --end-of-options: ls-tree would take it for a path.
            *("ls-tree", "-r", "-z", "--name-only", "--end-of-options", sha, *pathspec),
        )
        return sorted(name.decode() for name in listing.stdout.split(b"\0") if name)

    def entry_modes(self, ref: str, paths: Sequence[str]) -> dict[str, str]:
        """Return ``{path: git mode}`` of the paths that exist at ``ref`` (files or folders).

        ``100644``/``100755`` a file, ``040000`` a folder, ``120000`` a symbolic link,
        ``160000`` a submodule: what an edit must know before it writes a path. One
        ``ls-tree`` per parent folder (git matches several paths given to one ``ls-tree``
        as patterns, which would list a folder's content instead of the folder).
        """
        sha = self.resolve(ref)
        wanted = [checked_path(path) for path in paths]
        modes: dict[str, str] = {}
        for folder in sorted({path.rpartition("/")[0] for path in wanted}):
            listing = run(
                self.git_dir,
                # No "--" after --end-of-options: ls-tree would take it for a path.
                *("ls-tree", "-z", "--full-tree", "--end-of-options", sha),
                *([f"{folder}/"] if folder else []),
            )
            for entry in listing.stdout.split(b"\0"):
                if entry:
                    meta, _, name = entry.decode(errors="replace").partition("\t")
                    modes[name] = meta.split(" ")[0]
        return {path: modes[path] for path in wanted if path in modes}

    def diff(self, head: str, base: str | None = None) -> str:
        """Return the unified diff of what ``head`` adds since it forked from ``base`` (main).

        Added files appear in full. After a merge, pass the base the change was reviewed
        against (the parent of the branch commit) to see the same diff again.
        """
        base_sha, head_sha = self.resolve(base or self.main), self.resolve(head)
        result = run(
            self.git_dir,
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--end-of-options",
            f"{base_sha}...{head_sha}",
        )
        return result.stdout.decode(errors="replace")

    def changed_files(self, head: str, base: str | None = None) -> list[str]:
        """Return the paths ``head`` changes since it forked from ``base`` (main), sorted."""
        base_sha, head_sha = self.resolve(base or self.main), self.resolve(head)
        result = run(
            self.git_dir,
            *("diff", "--name-only", "-z", "--no-renames", "--end-of-options"),
            f"{base_sha}...{head_sha}",
        )
        return sorted(name.decode() for name in result.stdout.split(b"\0") if name)

    def export_tree(self, ref: str, dest: Path, paths: Sequence[str] = ()) -> None:
        """Write the files of ``ref`` into the empty or missing directory ``dest``.

        With ``paths`` (folders or files), only those: a change's checks need its own
        service folder, not every service the repository holds.
        """
        sha = self.resolve(ref)
        wanted = [checked(check_repo_path, path, "path") for path in paths]
        if dest.exists() and any(dest.iterdir()):
            raise GitOpsError(f"{dest} is not empty")
        dest = dest.resolve()
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="portal-gitops-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            tree = f"--work-tree={dest}"
            if wanted:
                # `checkout` takes no --end-of-options; the sha was resolved and validated.
                run(self.git_dir, tree, "checkout", sha, "--", *wanted, env=env)
                return
            run(self.git_dir, tree, "read-tree", "--end-of-options", sha, env=env)
            run(self.git_dir, tree, "checkout-index", "-a", "-f", env=env)

    def message_of(self, commit: str) -> str:
        """Return the full message of ``commit``."""
        checked(check_ref, commit, "commit")
        return self._out("log", "-1", "--format=%B", "--end-of-options", commit)

    # internals ---------------------------------------------------------------------

    def _out(self, *args: str) -> str:
        return out(self.git_dir, *args)

    def _remote_out(self, *args: str) -> str:
        return out(self.git_dir, *args, remote=self._remote, timeout=self.remote_timeout)

    def _exclusive(self) -> contextlib.AbstractContextManager[None]:
        return exclusive(self._lock_file, self.lock_timeout)

    def _fetch_main(self) -> str:
        self._remote_out("fetch", "--prune", "--quiet", "origin")
        sha = self._lookup(self.main)
        if sha is None:
            raise RefNotFoundError(f"the GitOps remote has no branch {self.main}")
        return sha

    def _lookup(self, ref: str, *, allow_sha: bool = True) -> str | None:
        candidates = [f"refs/remotes/origin/{ref}"] + ([ref] if allow_sha and is_sha(ref) else [])
        for candidate in candidates:
            result = run(
                self.git_dir,
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                f"{candidate}^{{commit}}",
                ok=(0, 1),
            )
            if result.returncode == 0:
                return result.stdout.decode().strip()
        return None

    def is_ancestor(self, commit: str, of: str) -> bool:
        """Return True when ``commit`` is ``of`` or one of its ancestors (both known here).

        Raises :class:`GitOpsError` when either is not a commit of this clone.
        """
        result = run(
            self.git_dir, "merge-base", "--is-ancestor", "--end-of-options", commit, of, ok=(0, 1)
        )
        return result.returncode == 0
