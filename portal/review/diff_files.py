"""Which files of a change the page shows at once, and which wait for "Show diff".

A file is *collapsed* (listed with its size, sha256 digest and the reasons, its diff loaded
on demand) when any of these holds:

- **vendored**: its content is byte for byte a file of the template the change was rendered
  from, at that template version, under the same file name (the template was reviewed
  when it was published; see :mod:`portal.review.vendored`);
- **minified**: recognised by content, not by name: a line of :data:`MINIFIED_LINE_CHARS`
  characters or more, or on average :data:`MINIFIED_BYTES_PER_LINE` bytes per line or
  more (a file of at least :data:`MINIFIED_MIN_BYTES`);
- **large**: more than :data:`LARGE_FILE_BYTES` bytes, or more than
  :data:`LARGE_FILE_LINES` changed lines;
- **generated**: a tool's lock file (``*.lock``: pins and hashes);
- **binary**: nothing to show but its size and digest.

The other files are shown at once, in order, until their rows add up to
:data:`INLINE_BYTES` of HTML; later ones wait for "Show diff" too ("shown on demand"), so
no change makes an unbounded page.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from portal.integrations.gitops_blobs import ChangedBlob
from portal.review.diff import FileDiff, TreeNode, file_tree

LARGE_FILE_BYTES = 20_000
LARGE_FILE_LINES = 400
MINIFIED_LINE_CHARS = 1_000
MINIFIED_BYTES_PER_LINE = 200
MINIFIED_MIN_BYTES = 2_000
INLINE_BYTES = 125_000  # of rows' HTML shown at once: the air-quality page stays < 220 KB
# (115 KB until each environment's cluster file, listed before the service, held its images)
DIGEST_CHARS = 12  # of the sha256 shown on the page; the whole digest is in its title

VendoredMatch = Callable[[str, str], str | None]
"""Given a changed file's path and blob, say "vendored from template X vY" or None."""


@dataclass(frozen=True)
class DiffEntry:
    """One changed file on the change page: its diff, its facts and why it is collapsed."""

    index: int
    file: FileDiff
    size: int | None  # bytes on the new side (the old side for a deleted file)
    sha256: str | None
    reasons: tuple[str, ...] = ()  # empty: shown at once
    deferred: bool = False  # not collapsed by a rule, but over the page's budget of rows

    @property
    def path(self) -> str:
        """Return the file's path in the repository."""
        return self.file.path

    @property
    def change(self) -> str:
        """Return added, deleted, modified or mode."""
        return self.file.change

    @property
    def additions(self) -> int:
        """Count the added lines."""
        return self.file.additions

    @property
    def deletions(self) -> int:
        """Count the removed lines."""
        return self.file.deletions

    @property
    def anchor(self) -> str:
        """Return the element id of the file's section (paths never become ids)."""
        return f"file-{self.index}"

    @property
    def collapsed(self) -> bool:
        """Tell whether the page lists the file without its diff."""
        return bool(self.reasons) or self.deferred

    @property
    def short_digest(self) -> str:
        """Return the beginning of the sha256 digest, as the page shows it."""
        return (self.sha256 or "")[:DIGEST_CHARS]


@dataclass(frozen=True)
class ChangeDiff:
    """The files one diff changes (``base`` to ``head``), classified, with their contents."""

    base: str
    head: str
    entries: tuple[DiffEntry, ...]
    blobs: Mapping[str, ChangedBlob]  # by path
    contents: Mapping[str, bytes]  # by blob sha, both sides

    @property
    def tree(self) -> tuple[TreeNode, ...]:
        """Nest the files by folder for the page's file tree."""
        return file_tree(self.entries)

    @property
    def additions(self) -> int:
        """Count the added lines of every file."""
        return sum(entry.additions for entry in self.entries)

    @property
    def deletions(self) -> int:
        """Count the removed lines of every file."""
        return sum(entry.deletions for entry in self.entries)

    def entry(self, path: str) -> DiffEntry | None:
        """Return the file at ``path`` if this diff changes it (the only way a path is used)."""
        return next((entry for entry in self.entries if entry.path == path), None)

    def lines(self, path: str, side: str) -> list[str] | None:
        """Return the lines of ``path`` on ``side`` (``new`` or ``old``); None: no such file."""
        blob = self.blobs.get(path)
        sha = None if blob is None else blob.new_blob if side == "new" else blob.old_blob
        if sha is None or sha not in self.contents:
            return None
        return self.contents[sha].decode(errors="replace").splitlines()


def looks_minified(content: bytes) -> bool:
    """Tell whether ``content`` is minified: a very long line, or very few newlines."""
    if len(content) < MINIFIED_MIN_BYTES:
        return False
    lines = content.split(b"\n")
    longest = max(len(line) for line in lines)
    return longest >= MINIFIED_LINE_CHARS or len(content) / len(lines) >= MINIFIED_BYTES_PER_LINE


def collapse_reasons(
    file: FileDiff, content: bytes | None, vendored: str | None = None
) -> tuple[str, ...]:
    """Return why ``file`` is listed without its diff (empty: it is shown at once)."""
    reasons: list[str] = []
    if vendored:
        reasons.append(vendored)
    if file.binary:
        reasons.append("binary")
        return tuple(reasons)
    if content is not None and looks_minified(content):
        reasons.append("minified")
    size = len(content) if content is not None else 0
    if size > LARGE_FILE_BYTES or file.additions + file.deletions > LARGE_FILE_LINES:
        reasons.append("large")
    if file.path.endswith(".lock"):
        reasons.append("generated lock file")
    return tuple(reasons)


def classify(
    base: str,
    head: str,
    files: Sequence[FileDiff],
    blobs: Mapping[str, ChangedBlob],
    contents: Mapping[str, bytes],
    vendored: VendoredMatch | None = None,
    *,
    expand: bool = False,
) -> ChangeDiff:
    """Give each file its facts and its reasons to be collapsed (``expand``: none, but binary).

    ``files`` come from the diff text, ``blobs`` and ``contents`` from the same two commits.
    """
    entries: list[DiffEntry] = []
    for index, file in enumerate(files, start=1):
        blob = blobs.get(file.path)
        sha = None if blob is None else blob.new_blob or blob.old_blob
        content = contents.get(sha) if sha else None
        new_blob = blob.new_blob if blob else None
        matched = vendored(file.path, new_blob) if vendored and new_blob else None
        reasons = collapse_reasons(file, content, matched)
        if expand:
            reasons = ("binary",) if file.binary else ()
        entries.append(
            DiffEntry(
                index=index,
                file=file,
                size=None if content is None else len(content),
                sha256=None if content is None else hashlib.sha256(content).hexdigest(),
                reasons=reasons,
            )
        )
    return ChangeDiff(base, head, tuple(entries), dict(blobs), dict(contents))


def within_budget(
    diff: ChangeDiff, measure: Callable[[DiffEntry], int], budget: int = INLINE_BYTES
) -> ChangeDiff:
    """Defer the files shown at once after ``budget`` bytes of rows (``measure``: a file's)."""
    entries: list[DiffEntry] = []
    for entry in diff.entries:
        if not entry.collapsed:
            size = measure(entry)
            if size > budget:
                entry = dataclasses.replace(entry, deferred=True)
                budget = 0  # keep the files in order: none after the first that is deferred
            else:
                budget -= size
        entries.append(entry)
    return dataclasses.replace(diff, entries=tuple(entries))
