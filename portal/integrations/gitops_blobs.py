"""What the review pages read of commits: the changed files' blobs, revision chains, template trees.

Every command here is plumbing on a bare repository (no working tree), with commits given
after ``--end-of-options`` and checked first: a commit is a full sha or a ref that passes
:func:`portal.integrations.git_args.check_ref`. No file path from a request ever reaches
git here: the changed files are *listed* by git, and callers look paths up in that list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from portal.integrations.git_args import GitArgumentError, check_ref, is_sha
from portal.integrations.gitops_plumbing import GitOpsError, out, run

ZERO_SHA = "0" * 40
MAX_CHAIN = 200  # revisions followed back from a branch head; a change has a handful


@dataclass(frozen=True)
class ChangedBlob:
    """One file a diff changes: its path and the blobs (None: no such side) on each side."""

    path: str
    status: str  # git's letter: A added, M modified, D deleted, T type changed
    old_blob: str | None
    new_blob: str | None
    new_mode: str


@dataclass(frozen=True)
class ChainCommit:
    """A commit of a branch's revision chain: its sha, its parents and its message."""

    sha: str
    parents: tuple[str, ...]
    message: str


def _commit(value: str) -> str:
    """Refuse anything git could read as an option or a range before it reaches git."""
    try:
        return value if is_sha(value) else check_ref(value, "commit")
    except GitArgumentError as exc:
        raise GitOpsError(str(exc)) from None


def changed_blobs(git_dir: Path, base: str, head: str) -> list[ChangedBlob]:
    """Return the files that differ between the trees of ``base`` and ``head``, sorted by path."""
    result = run(
        git_dir,
        *("diff-tree", "-r", "-z", "--raw", "--no-renames", "--no-abbrev"),
        *("--end-of-options", _commit(base), _commit(head)),
    )
    fields = result.stdout.split(b"\0")
    changed: list[ChangedBlob] = []
    # Records come as ":<old mode> <new mode> <old sha> <new sha> <status>" NUL "<path>" NUL.
    for meta, raw_path in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.decode("ascii", errors="replace").lstrip(":").split()
        if len(parts) != 5:
            continue
        _old_mode, new_mode, old_sha, new_sha, status = parts
        changed.append(
            ChangedBlob(
                path=raw_path.decode(errors="replace"),
                status=status[:1],
                old_blob=None if old_sha == ZERO_SHA else old_sha,
                new_blob=None if new_sha == ZERO_SHA else new_sha,
                new_mode=new_mode,
            )
        )
    return sorted(changed, key=lambda blob: blob.path)


def read_blobs(git_dir: Path, blobs: Iterable[str]) -> dict[str, bytes]:
    """Return the content of each blob (one ``cat-file --batch`` for all of them)."""
    wanted = sorted({blob for blob in blobs if is_sha(blob)})
    if not wanted:
        return {}
    request = b"".join(f"{blob}\n".encode() for blob in wanted)
    output = run(git_dir, "cat-file", "--batch", stdin=request).stdout
    contents: dict[str, bytes] = {}
    offset = 0
    for blob in wanted:
        header_end = output.index(b"\n", offset)
        header = output[offset:header_end].decode("ascii", errors="replace").split()
        if len(header) != 3 or header[0] != blob or header[1] != "blob":
            raise GitOpsError(f"git cat-file answered {' '.join(header)!r} for blob {blob}")
        size = int(header[2])
        start = header_end + 1
        contents[blob] = output[start : start + size]
        offset = start + size + 1  # the content is followed by a newline
    return contents


def revision_chain(git_dir: Path, head: str, limit: int = MAX_CHAIN) -> list[ChainCommit]:
    """Follow a change branch back from ``head``: each revision's second parent is the last.

    A revision commit has two parents (the ``main`` it was built on, then the revision
    before it); the first revision has one. Returns the chain newest first.
    """
    chain: list[ChainCommit] = []
    commit: str | None = _commit(head)
    while commit is not None and len(chain) < limit:
        text = out(git_dir, "show", "-s", "--format=%H %P%n%B", "--end-of-options", commit)
        first, _, message = text.partition("\n")
        sha, *parents = first.split()
        chain.append(ChainCommit(sha, tuple(parents), message))
        commit = parents[1] if len(parents) == 2 else None
    return chain


def resolve_commit(git_dir: Path, ref: str) -> str | None:
    """Return the commit ``ref`` names in the repository at ``git_dir``; None when it has none."""
    result = run(
        git_dir,
        *("rev-parse", "--verify", "--quiet", "--end-of-options", f"{_commit(ref)}^{{commit}}"),
        ok=(0, 1),
    )
    return result.stdout.decode().strip() if result.returncode == 0 else None


def tree_blobs(git_dir: Path, commit: str) -> dict[str, str]:
    """Return ``{path: blob sha}`` of every file of ``commit`` (a template repository's tree)."""
    listing = run(
        git_dir, "ls-tree", "-r", "-z", "--full-tree", "--end-of-options", _commit(commit)
    )
    blobs: dict[str, str] = {}
    for record in listing.stdout.split(b"\0"):
        meta, _, raw_path = record.partition(b"\t")
        parts = meta.decode("ascii", errors="replace").split()
        if len(parts) == 3 and parts[1] == "blob":
            blobs[raw_path.decode(errors="replace")] = parts[2]
    return blobs
