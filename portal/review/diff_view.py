"""The diff part of the change page: the whole change or the changes since a revision.

Its files classified, their rows, and the review comments placed at their lines.

Git is read once per pair of commits (a bounded cache: commits never change); rendered
rows are cached per file. Every path a request names is looked up in the diff's own list
of files, never handed to git or the file system.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from portal.changes.models import Change
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_blobs import ChangedBlob, changed_blobs, read_blobs
from portal.review.comments import ReviewComment, is_outdated
from portal.review.diff import FileDiff, RenderedFile, render_file, split_diff
from portal.review.diff_files import (
    ChangeDiff,
    DiffEntry,
    VendoredMatch,
    classify,
    within_budget,
)
from portal.review.revisions import Revision, revisions_of, since_revision
from portal.review.vendored import ANSWERS_FILE, TemplateFiles, recorded_commit

T = TypeVar("T")
GitRead = tuple[tuple[FileDiff, ...], dict[str, ChangedBlob], dict[str, bytes]]


class _Bounded:
    """A small thread-safe LRU cache of values computed from immutable commits."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]  # type: ignore[return-value]
        value = compute()  # outside the lock: git may take a while
        with self._lock:
            self._values[key] = value
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


_READS = _Bounded(16)  # a change's whole diff and contents: a few hundred KB each
_PARENTS = _Bounded(512)
rendered = functools.lru_cache(maxsize=1024)(render_file)


ROW_MARKUP_BYTES = 30  # the row's own tags around its highlighted code


def _rows_bytes(entry: DiffEntry) -> int:
    """Return about how many bytes of HTML the file's rows make."""
    rows = rendered(entry.file).rows
    return sum(len(row.html) for row in rows) + ROW_MARKUP_BYTES * len(rows)


def clear_caches() -> None:
    """Forget what was read from git (tests that rewrite a repository)."""
    _READS.clear()
    _PARENTS.clear()
    rendered.cache_clear()


def _read(gitops: GitOpsRepo, base: str, head: str) -> GitRead:
    def compute() -> GitRead:
        files = tuple(split_diff(gitops.diff(head, base=base)))
        blobs = {blob.path: blob for blob in changed_blobs(gitops.git_dir, base, head)}
        shas = [sha for blob in blobs.values() for sha in (blob.old_blob, blob.new_blob) if sha]
        return files, blobs, read_blobs(gitops.git_dir, shas)

    return _READS.get((gitops.git_dir, base, head), compute)


def base_of(gitops: GitOpsRepo, head: str) -> str:
    """Return the first parent of a change's commit: the ``main`` it was built on (cached)."""
    return _PARENTS.get((gitops.git_dir, head), lambda: gitops.parent_of(head))


def _vendored(change: Change, templates: TemplateFiles, read: GitRead) -> VendoredMatch | None:
    _files, blobs, contents = read
    refs = []
    answers = blobs.get(f"services/{change.service}/{ANSWERS_FILE}")
    if answers is not None and answers.new_blob in contents:
        recorded = recorded_commit(contents[answers.new_blob])
        refs.extend([recorded] if recorded else [])
    if change.template_version:
        refs.append(f"v{change.template_version.removeprefix('v')}")
    tree = templates.tree(change.template, change.template_version, refs)
    return tree.match if tree is not None else None


@dataclass(frozen=True)
class FileThreads:
    """The comments of one file: current ones by (side, line), outdated ones apart."""

    at: dict[tuple[str, int], list[ReviewComment]] = field(default_factory=dict)
    outdated: list[ReviewComment] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Count every comment of the file."""
        return sum(len(found) for found in self.at.values()) + len(self.outdated)


@dataclass
class DiffView:
    """What the change page shows of the diff: files, rows, comments, revisions."""

    change: Change
    diff: ChangeDiff
    whole: ChangeDiff  # the whole change: comments are placed and judged against it
    revisions: tuple[Revision, ...]
    since: Revision | None
    comments: list[ReviewComment]
    expand: bool = False
    outdated: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.outdated = {c.id for c in self.comments if c.id and is_outdated(c, self.whole)}

    @property
    def revision(self) -> int:
        """Return the number of the head's revision."""
        return self.revisions[-1].number if self.revisions else self.change.revision

    @property
    def open_comments(self) -> list[ReviewComment]:
        """Return the unresolved comments, outdated ones included."""
        return [comment for comment in self.comments if comment.resolved_at is None]

    def rows(self, entry: DiffEntry) -> RenderedFile:
        """Return the highlighted rows of one file."""
        return rendered(entry.file)

    def threads(self, path: str) -> FileThreads:
        """Return the comments of ``path`` to show in this diff."""
        threads = FileThreads()
        for comment in self.comments:
            if comment.path != path:
                continue
            if comment.id in self.outdated:
                threads.outdated.append(comment)
            elif self.since is None or comment.side == "new":
                # Since a revision, the old side is that revision, not what was commented.
                threads.at.setdefault((comment.side, comment.line), []).append(comment)
        return threads

    def entry_of(self, comment: ReviewComment) -> DiffEntry | None:
        """Return the file a comment is on, if this diff shows it."""
        return self.diff.entry(comment.path)


def load_view(
    gitops: GitOpsRepo,
    templates: TemplateFiles,
    change: Change,
    comments: list[ReviewComment],
    *,
    since: str | None = None,
    expand: bool = False,
) -> DiffView:
    """Read the change's diff (or the changes since revision ``since``) and classify it.

    Raises :class:`~portal.review.revisions.SinceError` for a ``since`` that names no
    earlier revision, and ``GitError`` when git cannot answer.
    """
    if change.commit_sha is None:
        raise ValueError("the change has no commit")
    head = change.commit_sha
    base = base_of(gitops, head)
    whole_read = _read(gitops, base, head)
    vendored = _vendored(change, templates, whole_read)
    whole = classify(base, head, *whole_read, vendored, expand=expand)
    if not expand:
        whole = within_budget(whole, _rows_bytes)
    revisions = revisions_of(gitops.git_dir, head)
    chosen = since_revision(since, revisions)
    diff = whole
    if chosen is not None:
        since_read = _read(gitops, chosen.commit, head)
        diff = classify(chosen.commit, head, *since_read, vendored, expand=expand)
        diff = diff if expand else within_budget(diff, _rows_bytes)
    return DiffView(change, diff, whole, revisions, chosen, comments, expand)
