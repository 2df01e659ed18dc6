"""The portal's only writer to the GitOps repository (the git remote Flux watches).

A change is one commit, written by ``git fast-import`` as one pack (no index, no working
tree) and published by a single push, so a crash leaves either no branch or a complete
one. Writes are serialized per clone (a thread lock plus ``flock``); portal replicas each
keep their own clone and meet only at the remote, where a push that lost a race is
retried on a fresh ``main``.

Reading, and the clone's bounds for request threads, are in
:mod:`portal.integrations.gitops_clone`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping

from portal.integrations.git_args import GitArgumentError, check_branch
from portal.integrations.gitops_blobs import changed_blobs, read_blobs
from portal.integrations.gitops_clone import GitOpsClone
from portal.integrations.gitops_plumbing import (
    Author,
    BranchExistsError,
    BranchMovedError,
    FileExistsOnMainError,
    GitOpsError,
    GitOpsUnavailableError,
    MergeConflictError,
    PathRefusedError,
    RefNotFoundError,
    check_only_added,
    check_only_written,
    checked_files,
    commit_tree,
    is_sha,
    refuse_existing,
    run,
    write_commit,
)

__all__ = [
    "Amend",
    "Author",
    "BranchExistsError",
    "BranchMovedError",
    "FileExistsOnMainError",
    "GitOpsClone",
    "GitOpsError",
    "GitOpsRepo",
    "GitOpsUnavailableError",
    "MergeConflictError",
    "PathRefusedError",
    "RefNotFoundError",
]

# A portal-made edit of one file that exists at the base: its new content from the current
# one, or None to leave it. Run under the write lock on the commit the branch is built on.
Amend = Callable[[bytes], bytes | None]

# Push rejections that mean "the ref moved since we looked": worth a fresh attempt.
_RACE_MARKERS = (
    "fetch first",
    "non-fast-forward",
    "stale info",
    "failed to update ref",
    "cannot lock ref",
    "incorrect old value",
)


class GitOpsRepo(GitOpsClone):
    """The clone of the GitOps remote every write goes through (reads: :class:`GitOpsClone`)."""

    # writes ------------------------------------------------------------------------

    def create_branch(
        self,
        branch: str,
        files: Mapping[str, bytes],
        message: str,
        author: Author,
        *,
        executable: Collection[str] = (),
        amend: Mapping[str, Amend] | None = None,
    ) -> str:
        """Push a new ``branch``: one commit on top of ``main`` adding ``files``; return its sha.

        Refuses unsafe paths, files that ``main`` already has and a branch that exists.
        ``amend``: the portal's own edits of files ``main`` has (never a template's), each
        applied to the file as it is on the commit the branch is built on.
        """
        self._check_branch(branch)
        paths = checked_files(branch, files, author, executable)
        with self._exclusive():
            base = self._fetch_main()
            if self._lookup(branch, allow_sha=False) is not None:
                raise BranchExistsError(f"branch {branch} already exists")
            refuse_existing(self.git_dir, self.main, base, paths)
            amended = self._amended(base, amend or {}, paths)
            identities = (author, self.committer)
            written = {**files, **amended}
            sha = write_commit(self.git_dir, [base], written, message, identities, executable)
            check_only_added(self.git_dir, base, sha, paths, modified=list(amended))
            self._push_new_branch(branch, sha)
        return sha

    def create_edit_branch(
        self,
        branch: str,
        base: str,
        files: Mapping[str, bytes],
        message: str,
        author: Author,
        *,
        executable: Collection[str] = (),
        deleted: Collection[str] = (),
    ) -> str:
        """Push a new ``branch``: one commit on ``base`` writing ``files``; return its sha.

        Unlike a scaffold, the files may replace ones ``base`` has, and ``deleted`` paths
        of ``base`` are removed. ``base`` is the commit of ``main`` the files were computed
        from (never a newer ``main``, which would silently undo what landed meanwhile): the
        merge later brings both together. Refuses a ``base`` that is not on ``main``,
        unsafe paths and a branch that exists.
        """
        self._check_branch(branch)
        paths = checked_files(branch, files, author, executable, allow_empty=bool(deleted))
        if overlap := sorted(set(deleted) & set(paths)):
            raise GitOpsError(f"{overlap[0]} is both written and deleted")
        if not is_sha(base):
            raise GitOpsError(f"{base!r} is not a commit sha")
        with self._exclusive():
            main = self._fetch_main()
            if not self.is_ancestor(base, main):
                raise RefNotFoundError(f"{base[:12]} is not a commit of {self.main}")
            if self._lookup(branch, allow_sha=False) is not None:
                raise BranchExistsError(f"branch {branch} already exists")
            identities = (author, self.committer)
            sha = write_commit(
                self.git_dir, [base], files, message, identities, executable, deleted
            )
            check_only_written(self.git_dir, base, sha, paths, deleted)
            self._push_new_branch(branch, sha)
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
        amend: Mapping[str, Amend] | None = None,
    ) -> str:
        """Push a new revision of ``branch``: its base on ``main`` plus ``files``; return the sha.

        The commit's tree is the branch's base plus ``files``, so files a revision no longer
        renders disappear. Its first parent is that base (so the first-parent diff is always
        the whole change, as for a new branch) and its second parent the current head (so
        the branch only fast-forwards, never a force push). Refused when the branch moved
        from ``expected_head`` meanwhile (someone else revised it) or is already merged.
        ``amend`` is applied to that base, as for :meth:`create_branch`.
        """
        self._check_branch(branch)
        paths = checked_files(branch, files, author, executable)
        with self._exclusive():
            head, base = self._revisable(branch, expected_head)
            refuse_existing(self.git_dir, self.main, base, paths)
            amended = self._amended(base, amend or {}, paths)
            identities = (author, self.committer)
            written = {**files, **amended}
            sha = write_commit(self.git_dir, [base, head], written, message, identities, executable)
            check_only_added(self.git_dir, base, sha, paths, modified=list(amended))
            self._push_revision(branch, sha, head)
        return sha

    def revise_edit_branch(
        self,
        branch: str,
        expected_head: str,
        files: Mapping[str, bytes],
        message: str,
        author: Author,
        *,
        deleted: Collection[str] = (),
    ) -> str:
        """Push a new revision of an edit branch: its head with ``files`` and ``deleted`` applied.

        As :meth:`update_branch`, the commit's first parent is the branch's base on main (the
        first-parent diff is the whole change) and its second parent the head (the branch
        only fast-forwards); refused when the branch moved from ``expected_head`` or is
        merged. Unlike it, the files may replace ones the base or the branch has: the tree
        is the head's with ``files`` written and ``deleted`` removed, and nothing else moves.
        """
        self._check_branch(branch)
        paths = checked_files(branch, files, author, (), allow_empty=bool(deleted))
        if overlap := sorted(set(deleted) & set(paths)):
            raise GitOpsError(f"{overlap[0]} is both written and deleted")
        with self._exclusive():
            head, base = self._revisable(branch, expected_head)
            # The branch's own changes are written again on the base, then the revision's.
            branch_files = changed_blobs(self.git_dir, base, head)
            kept = {blob.path: blob for blob in branch_files if blob.new_blob is not None}
            contents = read_blobs(self.git_dir, [blob.new_blob or "" for blob in kept.values()])
            tree = {path: contents[blob.new_blob or ""] for path, blob in kept.items()}
            tree.update(files)
            executable = [
                path for path, blob in kept.items() if blob.new_mode == "100755" and path in tree
            ]
            gone = {blob.path for blob in branch_files if blob.new_blob is None} | set(deleted)
            for path in deleted:
                tree.pop(path, None)
            identities = (author, self.committer)
            sha = write_commit(
                self.git_dir, [base, head], tree, message, identities, executable, gone - set(tree)
            )
            check_only_written(self.git_dir, head, sha, paths, deleted)
            self._push_revision(branch, sha, head)
        return sha

    def _revisable(self, branch: str, expected_head: str) -> tuple[str, str]:
        """Return the head of ``branch`` and its base on main, if it may take a revision.

        Refused when the branch is gone, moved from ``expected_head`` (someone else revised
        it) or is already merged. Called holding the clone's lock.
        """
        main = self._fetch_main()
        head = self._lookup(branch, allow_sha=False)
        if head is None:
            raise RefNotFoundError(f"branch {branch} does not exist on the remote")
        if head != expected_head:
            raise GitOpsError(f"branch {branch} moved to {head[:12]} meanwhile")
        if self.is_ancestor(head, main):
            raise GitOpsError(f"branch {branch} is already merged into {self.main}")
        return head, self._out("merge-base", "--end-of-options", main, head)

    def _push_revision(self, branch: str, sha: str, head: str) -> None:
        """Move ``branch`` from ``head`` to ``sha``, only if nobody moved it meanwhile."""
        rejected = self._push(
            f"{sha}:refs/heads/{branch}", f"--force-with-lease=refs/heads/{branch}:{head}"
        )
        if rejected:
            raise GitOpsError(f"branch {branch} moved meanwhile ({rejected})")

    def _amended(
        self, base: str, amend: Mapping[str, Amend], added: Collection[str]
    ) -> dict[str, bytes]:
        """Return the new content of each file ``amend`` changes at ``base``.

        A file ``base`` does not have, or one the change adds, is left to the change.
        """
        amended: dict[str, bytes] = {}
        for path, edit in amend.items():
            if path in added:
                continue
            try:
                current = self.read_file(base, path)
            except RefNotFoundError:
                continue
            new = edit(current)
            if new is not None and new != current:
                amended[path] = new
        return amended

    def merge(
        self, branch: str, message: str, author: Author, *, expected_head: str | None = None
    ) -> str:
        """Merge ``branch`` into ``main`` with a merge commit, push it, return its sha.

        A branch already on ``main`` is not merged again: its existing merge is returned.
        ``expected_head``: the commit that was checked; a branch someone pushed to since is
        refused (:class:`BranchMovedError`), so nothing unchecked reaches main.
        """
        self._check_branch(branch)
        with self._exclusive():
            for attempt in range(1, self.merge_attempts + 1):
                main = self._fetch_main()
                head = self._lookup(branch, allow_sha=False)
                if head is None:
                    raise RefNotFoundError(f"branch {branch} does not exist on the remote")
                if self.is_ancestor(head, main):
                    return self._merge_of(head, main)
                if expected_head is not None and head != expected_head:
                    raise BranchMovedError(branch, head, expected_head)
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
        with self._exclusive():
            # ls-remote itself, not branch_exists: that may refresh, which takes this lock.
            existed = bool(
                self._remote_out("ls-remote", "--heads", "origin", f"refs/heads/{branch}")
            )
            if existed:
                # The remote only warns when the ref vanished meanwhile (a concurrent
                # delete), so this stays idempotent across replicas.
                self._remote_out("push", "--quiet", "origin", f":refs/heads/{branch}")
            run(
                self.git_dir,
                "update-ref",
                "-d",
                "--end-of-options",
                f"refs/remotes/origin/{branch}",
            )
            return existed

    # internals ---------------------------------------------------------------------

    def _push_new_branch(self, branch: str, sha: str) -> None:
        # An empty lease makes the remote create the ref only if it does not exist yet,
        # atomically, so two replicas cannot both "create" the same branch.
        rejected = self._push(
            f"{sha}:refs/heads/{branch}", f"--force-with-lease=refs/heads/{branch}:"
        )
        if rejected:
            raise BranchExistsError(f"branch {branch} already exists ({rejected})")

    def _check_branch(self, branch: str) -> None:
        try:
            valid = check_branch(branch) != self.main
        except GitArgumentError:
            valid = False
        if valid:  # git's own rules too, so the two can never disagree
            check = run(None, "check-ref-format", f"refs/heads/{branch}", ok=(0, 1))
            valid = check.returncode == 0
        if not valid:
            raise GitOpsError(f"{branch!r} is not a branch name the portal may write")

    def _merge_of(self, head: str, main: str) -> str:
        listing = self._out(
            *("rev-list", "--merges", "--parents", "--reverse", "--ancestry-path"),
            *("--end-of-options", f"{head}..{main}"),
        )
        for line in listing.splitlines():
            commit, *parents = line.split()
            if head in parents[1:]:
                return commit
        return head

    def _merge_tree(self, branch: str, main: str, head: str) -> str:
        result = run(
            self.git_dir,
            *("merge-tree", "--write-tree", "--name-only", "-z", "--end-of-options", main, head),
            ok=(0, 1),
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
            "--end-of-options",
            "origin",
            refspec,
            ok=(0, 1),
            remote=self._remote,
            timeout=self.remote_timeout,
        )
        if result.returncode == 0:
            return None
        lines = result.stdout.decode(errors="replace").splitlines()
        refused = [line.split("\t")[-1] for line in lines if line.startswith("!")]
        details = self._remote.redact(result.stderr.decode(errors="replace").strip())
        if not refused:
            raise GitOpsError(f"git push failed: {details}")
        return f"{refused[0]} {details}".strip()
