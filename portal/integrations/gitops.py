"""The portal's only writer to the GitOps repository (the git remote Flux watches).

A change is one commit, written by ``git fast-import`` as one pack (no index, no working
tree) and published by a single push, so a crash leaves either no branch or a complete
one. Writes are serialized per clone (a thread lock plus ``flock``); portal replicas each
keep their own clone and meet only at the remote, where a push that lost a race is
retried on a fresh ``main``.

The clone is bare on purpose: nothing here needs a checkout, and a checkout shared by
concurrent requests would be one more thing to keep consistent.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Collection, Mapping
from pathlib import Path

from portal.integrations.gitops_plumbing import (
    Author,
    BranchExistsError,
    FileExistsOnMainError,
    GitOpsError,
    MergeConflictError,
    PathRefusedError,
    RefNotFoundError,
    RemoteUrl,
    check_only_added,
    checked_files,
    checked_identity,
    checked_path,
    commit_tree,
    exclusive,
    is_sha,
    object_types,
    out,
    refuse_existing,
    run,
    write_commit,
)

__all__ = [
    "Author",
    "BranchExistsError",
    "FileExistsOnMainError",
    "GitOpsError",
    "GitOpsRepo",
    "MergeConflictError",
    "PathRefusedError",
    "RefNotFoundError",
]

# Push rejections that mean "the ref moved since we looked": worth a fresh attempt.
_RACE_MARKERS = (
    "fetch first",
    "non-fast-forward",
    "stale info",
    "failed to update ref",
    "cannot lock ref",
    "incorrect old value",
)


class GitOpsRepo:
    """A bare clone of the GitOps remote; every write goes through it.

    Reads use what the clone last fetched (call :meth:`refresh` for the newest ``main``);
    a branch the clone has not seen yet is fetched on first use.
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
        self.main = main
        self.committer = checked_identity(committer)
        # Each failed attempt means another writer's merge landed, so this bounds how
        # many merges may overtake one of ours before the caller is told to retry.
        self.merge_attempts = merge_attempts
        self._remote = RemoteUrl.parse(remote_url)
        self._lock_file = self.git_dir / "portal-write.lock"

    def __repr__(self) -> str:
        return f"GitOpsRepo({str(self.git_dir)!r}, remote={self._remote.public!r})"

    @property
    def public_url(self) -> str:
        """Return the remote's URL without credentials (safe to store and show)."""
        return self._remote.public

    # reads -------------------------------------------------------------------------

    def refresh(self) -> str:
        """Fetch every branch from the remote and return the sha of ``main``."""
        with exclusive(self._lock_file):
            return self._fetch_main()

    def resolve(self, ref: str) -> str:
        """Return the commit sha of a branch name (as on the remote) or a full sha."""
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
            self.git_dir, "rev-parse", "--verify", "--quiet", f"{sha}^1^{{commit}}", ok=(0, 1)
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
        listing = self._out("ls-remote", "--heads", "origin", f"refs/heads/{branch}")
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
        return run(self.git_dir, "cat-file", "blob", f"{sha}:{path}").stdout

    def list_files(self, ref: str, prefix: str = "") -> list[str]:
        """Return the sorted file paths at ``ref``, limited to the directory ``prefix``."""
        sha = self.resolve(ref)
        pathspec = [checked_path(prefix.rstrip("/"))] if prefix.strip("/") else []
        listing = run(self.git_dir, "ls-tree", "-r", "-z", "--name-only", sha, "--", *pathspec)
        return sorted(name.decode() for name in listing.stdout.split(b"\0") if name)

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
            f"{base_sha}...{head_sha}",
        )
        return result.stdout.decode(errors="replace")

    def changed_files(self, head: str, base: str | None = None) -> list[str]:
        """Return the paths ``head`` changes since it forked from ``base`` (main), sorted."""
        base_sha, head_sha = self.resolve(base or self.main), self.resolve(head)
        result = run(
            self.git_dir, "diff", "--name-only", "-z", "--no-renames", f"{base_sha}...{head_sha}"
        )
        return sorted(name.decode() for name in result.stdout.split(b"\0") if name)

    def export_tree(self, ref: str, dest: Path) -> None:
        """Write the files of ``ref`` into the empty or missing directory ``dest``."""
        sha = self.resolve(ref)
        if dest.exists() and any(dest.iterdir()):
            raise GitOpsError(f"{dest} is not empty")
        dest = dest.resolve()
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="portal-gitops-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            run(self.git_dir, f"--work-tree={dest}", "read-tree", sha, env=env)
            run(self.git_dir, f"--work-tree={dest}", "checkout-index", "-a", "-f", env=env)

    # writes ------------------------------------------------------------------------

    def create_branch(
        self,
        branch: str,
        files: Mapping[str, bytes],
        message: str,
        author: Author,
        *,
        executable: Collection[str] = (),
    ) -> str:
        """Push a new ``branch``: one commit on top of ``main`` adding ``files``; return its sha.

        Refuses unsafe paths, files that ``main`` already has and a branch that exists.
        """
        self._check_branch(branch)
        paths = checked_files(branch, files, author, executable)
        with exclusive(self._lock_file):
            base = self._fetch_main()
            if self._lookup(branch, allow_sha=False) is not None:
                raise BranchExistsError(f"branch {branch} already exists")
            refuse_existing(self.git_dir, self.main, base, paths)
            identities = (author, self.committer)
            sha = write_commit(self.git_dir, [base], files, message, identities, executable)
            check_only_added(self.git_dir, base, sha, paths)
            # An empty lease makes the remote create the ref only if it does not exist
            # yet, atomically, so two replicas cannot both "create" the same branch.
            rejected = self._push(
                f"{sha}:refs/heads/{branch}", f"--force-with-lease=refs/heads/{branch}:"
            )
            if rejected:
                raise BranchExistsError(f"branch {branch} already exists ({rejected})")
        return sha

    def update_branch(
        self,
        branch: str,
        expected_head: str,
        files: Mapping[str, bytes],
        message: str,
        author: Author,
        *,
        executable: Collection[str] = (),
    ) -> str:
        """Push a new revision of ``branch``: its base on ``main`` plus ``files``; return the sha.

        The commit's tree is the branch's base plus ``files``, so files a revision no longer
        renders disappear. Its first parent is that base (so the first-parent diff is always
        the whole change, as for a new branch) and its second parent the current head (so
        the branch only fast-forwards, never a force push). Refused when the branch moved
        from ``expected_head`` meanwhile (someone else revised it) or is already merged.
        """
        self._check_branch(branch)
        paths = checked_files(branch, files, author, executable)
        with exclusive(self._lock_file):
            main = self._fetch_main()
            head = self._lookup(branch, allow_sha=False)
            if head is None:
                raise RefNotFoundError(f"branch {branch} does not exist on the remote")
            if head != expected_head:
                raise GitOpsError(f"branch {branch} moved to {head[:12]} meanwhile")
            if self._is_ancestor(head, main):
                raise GitOpsError(f"branch {branch} is already merged into {self.main}")
            base = self._out("merge-base", main, head)
            refuse_existing(self.git_dir, self.main, base, paths)
            identities = (author, self.committer)
            sha = write_commit(self.git_dir, [base, head], files, message, identities, executable)
            check_only_added(self.git_dir, base, sha, paths)
            rejected = self._push(
                f"{sha}:refs/heads/{branch}", f"--force-with-lease=refs/heads/{branch}:{head}"
            )
            if rejected:
                raise GitOpsError(f"branch {branch} moved meanwhile ({rejected})")
        return sha

    def message_of(self, commit: str) -> str:
        """Return the full message of ``commit``."""
        return self._out("log", "-1", "--format=%B", commit)

    def merge(self, branch: str, message: str, author: Author) -> str:
        """Merge ``branch`` into ``main`` with a merge commit, push it, return its sha.

        A branch already on ``main`` is not merged again: its existing merge is returned.
        """
        self._check_branch(branch)
        with exclusive(self._lock_file):
            for attempt in range(1, self.merge_attempts + 1):
                main = self._fetch_main()
                head = self._lookup(branch, allow_sha=False)
                if head is None:
                    raise RefNotFoundError(f"branch {branch} does not exist on the remote")
                if self._is_ancestor(head, main):
                    return self._merge_of(head, main)
                tree = self._merge_tree(branch, main, head)
                sha = commit_tree(self.git_dir, tree, [main, head], message, author, self.committer)
                rejected = self._push(f"{sha}:refs/heads/{self.main}")
                if not rejected:
                    return sha
                if not any(marker in rejected for marker in _RACE_MARKERS):
                    raise GitOpsError(f"the remote refused the merge of {branch}: {rejected}")
                # Jitter keeps replicas that lost together from colliding again in step.
                time.sleep(random.uniform(0, 0.01 * min(attempt, 5)))  # noqa: S311
        raise GitOpsError(
            f"{self.main} kept moving: {branch} not merged after {self.merge_attempts} attempts"
        )

    def delete_branch(self, branch: str) -> bool:
        """Delete ``branch`` on the remote; return False when it was already gone."""
        self._check_branch(branch)
        with exclusive(self._lock_file):
            existed = self.branch_exists(branch)
            if existed:
                # The remote only warns when the ref vanished meanwhile (a concurrent
                # delete), so this stays idempotent across replicas.
                self._out("push", "--quiet", "origin", f":refs/heads/{branch}")
            run(self.git_dir, "update-ref", "-d", f"refs/remotes/origin/{branch}")
            return existed

    # internals ---------------------------------------------------------------------

    def _out(self, *args: str) -> str:
        return out(self.git_dir, *args, remote=self._remote)

    def _fetch_main(self) -> str:
        self._out("fetch", "--prune", "--quiet", "origin")
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
                f"{candidate}^{{commit}}",
                ok=(0, 1),
            )
            if result.returncode == 0:
                return result.stdout.decode().strip()
        return None

    def _check_branch(self, branch: str) -> None:
        valid = not branch.startswith("-") and branch not in {"HEAD", self.main}
        if valid:
            check = run(None, "check-ref-format", f"refs/heads/{branch}", ok=(0, 1))
            valid = check.returncode == 0
        if not valid:
            raise GitOpsError(f"{branch!r} is not a branch name the portal may write")

    def _is_ancestor(self, commit: str, of: str) -> bool:
        result = run(self.git_dir, "merge-base", "--is-ancestor", commit, of, ok=(0, 1))
        return result.returncode == 0

    def _merge_of(self, head: str, main: str) -> str:
        listing = self._out(
            "rev-list", "--merges", "--parents", "--reverse", "--ancestry-path", f"{head}..{main}"
        )
        for line in listing.splitlines():
            commit, *parents = line.split()
            if head in parents[1:]:
                return commit
        return head

    def _merge_tree(self, branch: str, main: str, head: str) -> str:
        result = run(
            self.git_dir, "merge-tree", "--write-tree", "--name-only", "-z", main, head, ok=(0, 1)
        )
        tree, *rest = result.stdout.decode(errors="replace").split("\0")
        if result.returncode == 1:
            conflicted = rest[: rest.index("")] if "" in rest else rest
            raise MergeConflictError(branch, sorted(set(conflicted)))
        return tree

    def _push(self, refspec: str, *options: str) -> str | None:
        """Push one refspec; return None on success or the remote's reason for refusing."""
        result = run(
            self.git_dir,
            "push",
            "--porcelain",
            *options,
            "origin",
            refspec,
            ok=(0, 1),
            remote=self._remote,
        )
        if result.returncode == 0:
            return None
        lines = result.stdout.decode(errors="replace").splitlines()
        refused = [line.split("\t")[-1] for line in lines if line.startswith("!")]
        details = self._remote.redact(result.stderr.decode(errors="replace").strip())
        if not refused:
            raise GitOpsError(f"git push failed: {details}")
        return f"{refused[0]} {details}".strip()
