"""Low-level pieces of the GitOps writer: paths, identities, trees and commits.

Everything here works on a git directory with plumbing commands only, so no working tree
is ever read or written and a half-built commit is never visible to anyone. Running git,
the remote's credentials and the locks are in :mod:`portal.integrations.gitops_run`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from portal.integrations.git_args import is_sha
from portal.integrations.gitops_run import (
    GitOpsError,
    GitOpsUnavailableError,
    RemoteUrl,
    exclusive,
    out,
    run,
)

__all__ = [
    "SCRATCH_REF",
    "Author",
    "BranchExistsError",
    "FileExistsOnMainError",
    "GitOpsError",
    "GitOpsUnavailableError",
    "MergeConflictError",
    "PathRefusedError",
    "RefNotFoundError",
    "RemoteUrl",
    "check_only_added",
    "check_only_written",
    "checked_files",
    "checked_identity",
    "checked_path",
    "commit_tree",
    "exclusive",
    "is_sha",
    "object_types",
    "out",
    "parent_dirs",
    "refuse_existing",
    "run",
    "write_commit",
    "write_tree",
]

Author = tuple[str, str]
"""A commit identity: ``(name, email)``."""

SCRATCH_REF = "refs/portal/last-write"
"""The ref :func:`write_commit` moves (git fast-import must name one); never pushed."""


class PathRefusedError(GitOpsError):
    """A file path is not a plain relative path inside the repository."""


class FileExistsOnMainError(GitOpsError):
    """A scaffold tried to add a file (or directory) that main already has."""


class BranchExistsError(GitOpsError):
    """The branch to create already exists on the remote."""


class RefNotFoundError(GitOpsError):
    """A branch, commit or file does not exist in the GitOps repository."""


class BranchMovedError(GitOpsError):
    """A branch is not at the commit that was checked: someone pushed to it meanwhile."""

    def __init__(self, branch: str, head: str, expected: str) -> None:
        super().__init__(
            f"branch {branch} moved to {head[:12]} since {expected[:12]} was checked: its "
            "new commits were never checked"
        )
        self.head = head


class MergeConflictError(GitOpsError):
    """A branch cannot be merged into main without a person resolving conflicts."""

    def __init__(self, branch: str, paths: Sequence[str]) -> None:
        super().__init__(f"cannot merge {branch}: conflicts in {', '.join(paths) or 'the tree'}")
        self.paths = list(paths)


def checked_path(path: str) -> str:
    """Return ``path`` if it is a plain relative POSIX path that stays inside the tree."""
    if not isinstance(path, str) or not path:
        raise PathRefusedError("empty file path")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        raise PathRefusedError(f"{path!r}: absolute paths are refused")
    if "\\" in path or any(ord(char) < 32 or char == "\x7f" for char in path):
        raise PathRefusedError(f"{path!r}: backslashes and control characters are refused")
    for part in path.split("/"):
        if part in {"", ".", ".."}:
            raise PathRefusedError(f"{path!r}: empty, '.' and '..' path segments are refused")
        # Windows and macOS file systems fold case and trailing dots: ".GIT." is ".git".
        if part.lower().rstrip(". ") == ".git":
            raise PathRefusedError(f"{path!r}: paths through .git are refused")
    return path


def parent_dirs(path: str) -> list[str]:
    """Return every ancestor directory of a relative path, outermost first."""
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def checked_files(
    branch: str,
    files: Mapping[str, bytes],
    author: Author,
    executable: Collection[str],
    *,
    allow_empty: bool = False,
) -> list[str]:
    """Refuse no files, unsafe paths, a file that is also a folder, or a bad identity.

    Return the checked paths of a change to ``branch``; ``allow_empty``: a change that only
    deletes files may write none.
    """
    if not files and not allow_empty:
        raise GitOpsError(f"{branch}: a change needs at least one file")
    paths = [checked_path(path) for path in files]
    if unknown := set(executable) - set(paths):
        raise PathRefusedError(f"executable paths not among the files: {sorted(unknown)}")
    for path in paths:
        if clash := [parent for parent in parent_dirs(path) if parent in files]:
            raise PathRefusedError(f"{path}: {clash[0]} is also added as a file")
    checked_identity(author)
    return paths


def checked_identity(who: Author) -> Author:
    """Refuse identities git would mangle (angle brackets, line breaks)."""
    name, email = who
    for value in (name, email):
        if not value.strip() or any(char in value for char in "<>\n\r\0"):
            raise GitOpsError(f"invalid git identity {name!r} <{email}>")
    return name, email


def commit_tree(
    git_dir: Path,
    tree: str,
    parents: Sequence[str],
    message: str,
    author: Author,
    committer: Author,
) -> str:
    """Write a commit object (nothing points at it yet) and return its sha."""
    if not message.strip() or "\0" in message:
        raise GitOpsError("a commit needs a non-empty message without NUL characters")
    (author_name, author_email), (committer_name, committer_email) = (
        checked_identity(author),
        checked_identity(committer),
    )
    env = {
        "GIT_AUTHOR_NAME": author_name,
        "GIT_AUTHOR_EMAIL": author_email,
        "GIT_COMMITTER_NAME": committer_name,
        "GIT_COMMITTER_EMAIL": committer_email,
    }
    parent_args = [arg for parent in parents for arg in ("-p", parent)]
    text = message if message.endswith("\n") else message + "\n"
    return out(git_dir, "commit-tree", tree, *parent_args, "-F", "-", env=env, stdin=text.encode())


def write_commit(
    git_dir: Path,
    parents: Sequence[str],
    files: Mapping[str, bytes],
    message: str,
    identities: tuple[Author, Author],
    executable: Collection[str] = (),
    deleted: Collection[str] = (),
) -> str:
    """Write a commit of the first parent's tree plus ``files``, as one pack; return its sha.

    ``deleted``: paths of the first parent's tree the commit removes (a template update
    deletes the files its new version no longer has).

    ``identities`` is ``(author, committer)``. ``git fast-import`` writes the blobs, trees
    and commit as a single pack file: written as loose objects (``hash-object``,
    ``write-tree``) each would be a file of its own, often in a new directory, at about a
    millisecond apiece on a busy disk. fast-import has to name a ref: :data:`SCRATCH_REF`,
    in the portal's own clone only, points at the last commit written and is never pushed.
    """
    if not message.strip() or "\0" in message:
        raise GitOpsError("a commit needs a non-empty message without NUL characters")
    (author_name, author_email), (committer_name, committer_email) = (
        checked_identity(identities[0]),
        checked_identity(identities[1]),
    )
    text = (message if message.endswith("\n") else message + "\n").encode()
    stream = [
        f"commit {SCRATCH_REF}\nmark :1\n".encode(),
        f"author {author_name} <{author_email}> now\n".encode(),
        f"committer {committer_name} <{committer_email}> now\n".encode(),
        f"data {len(text)}\n".encode() + text,
    ]
    stream += [f"from {parents[0]}\n".encode()] if parents else []
    stream += [f"merge {parent}\n".encode() for parent in parents[1:]]
    for path in sorted(deleted):
        stream.append(f"D {_quoted(checked_path(path))}\n".encode())
    for path in sorted(files):
        mode = "100755" if path in executable else "100644"
        quoted = _quoted(path)
        content = files[path]
        stream.append(f"M {mode} inline {quoted}\ndata {len(content)}\n".encode() + content)
    stream.append(b"\nget-mark :1\ndone\n")
    sha = out(
        git_dir,
        "-c",
        "fastimport.unpackLimit=0",  # always a pack, however few the objects
        "fast-import",
        "--quiet",
        "--done",
        "--force",  # SCRATCH_REF jumps between unrelated commits
        "--date-format=now",
        stdin=b"".join(stream),
    )
    if not is_sha(sha):
        raise GitOpsError(f"git fast-import did not name the commit it wrote: {sha[:200]!r}")
    return sha


def _quoted(path: str) -> str:
    """Quote ``path`` C-style, so it may hold any character checked_path lets through."""
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_tree(
    git_dir: Path, base: str | None, files: Mapping[str, bytes], executable: Collection[str] = ()
) -> str:
    """Write blobs for ``files`` and a tree of ``base`` plus them, in a private index."""
    with tempfile.TemporaryDirectory(prefix="portal-gitops-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if base is not None:
            run(git_dir, "read-tree", base, env=env)
        paths = sorted(files)
        if paths:
            blob_files = []
            for number, path in enumerate(paths):
                blob_file = Path(scratch) / f"blob-{number}"
                blob_file.write_bytes(files[path])
                blob_files.append(str(blob_file))
            listing = ("\n".join(blob_files) + "\n").encode()
            hashed = out(
                git_dir, "hash-object", "-w", "--no-filters", "--stdin-paths", stdin=listing
            )
            entries = b"".join(
                f"{'100755' if path in executable else '100644'} {sha}\t{path}\0".encode()
                for path, sha in zip(paths, hashed.split(), strict=True)
            )
            run(git_dir, "update-index", "--add", "-z", "--index-info", env=env, stdin=entries)
        return out(git_dir, "write-tree", env=env)


def object_types(git_dir: Path, commit: str, paths: Sequence[str]) -> dict[str, str]:
    """Return ``{path: "blob" | "tree" | ...}`` for the paths that exist at ``commit``."""
    if not paths:
        return {}
    query = "".join(f"{commit}:{path}\n" for path in paths).encode()
    lines = out(git_dir, "cat-file", "--batch-check=%(objecttype)", stdin=query).splitlines()
    # A missing object prints "<query> missing"; a found one prints just its type.
    return {
        path: kind
        for path, kind in zip(paths, lines, strict=True)
        if kind in {"blob", "tree", "commit", "tag"}
    }


def refuse_existing(git_dir: Path, main: str, base: str, paths: list[str]) -> None:
    """Refuse paths that ``base`` already has, or whose parent folders are files there."""
    parents = sorted({parent for path in paths for parent in parent_dirs(path)})
    found = object_types(git_dir, base, paths + parents)
    if existing := sorted(path for path in paths if path in found):
        raise FileExistsOnMainError(
            f"{main} already has {', '.join(existing)}; a scaffold only adds files"
        )
    if files := sorted(parent for parent in parents if found.get(parent, "tree") != "tree"):
        raise FileExistsOnMainError(f"{', '.join(files)} is a file on {main}")


def check_only_written(
    git_dir: Path, base: str, commit: str, paths: list[str], deleted: Collection[str] = ()
) -> None:
    """Prove ``commit`` adds or modifies ``paths`` and deletes ``deleted`` of ``base``, only.

    An edit's files replace or add blobs; a path that ends up deleted without being asked
    to, or any other path touched (fast-import replacing a file in the way of a folder), is
    refused before a push.
    """
    status = run(git_dir, "diff-tree", "-r", "-z", "--no-renames", "--name-status", base, commit)
    fields = [item.decode() for item in status.stdout.split(b"\0") if item]
    changes = dict(zip(fields[1::2], fields[0::2], strict=True))
    allowed = {**{path: {"A", "M"} for path in paths}, **{path: {"D"} for path in deleted}}
    if any(kind not in allowed.get(path, set()) for path, kind in changes.items()):
        raise GitOpsError(f"refusing a commit that changes more than its files: {changes}")
    if missing := sorted(path for path in deleted if changes.get(path) != "D"):
        raise GitOpsError(f"{missing[0]} is not a file of {base[:12]}: nothing to delete")


def check_only_added(
    git_dir: Path, base: str, commit: str, paths: list[str], *, modified: Sequence[str] = ()
) -> None:
    """Prove the tree of ``commit`` is the tree of ``base`` plus ``paths`` and nothing else.

    git fast-import replaces a file that is in the way of a folder (and the reverse)
    instead of failing, so a commit is checked after it is written, before it is pushed.
    ``modified``: files of ``base`` the portal itself amended, which must be modified.
    """
    status = run(git_dir, "diff-tree", "-r", "-z", "--no-renames", "--name-status", base, commit)
    fields = [item.decode() for item in status.stdout.split(b"\0") if item]
    changes = sorted(zip(fields[1::2], fields[0::2], strict=True))
    expected = [(path, "A") for path in paths] + [(path, "M") for path in modified]
    if changes != sorted(expected):
        raise GitOpsError(f"refusing a commit that would change more than it adds: {changes}")
