"""A change's unified diff as reviewers read it: split per file, highlighted, with a file tree.

Added files (what scaffolds produce) are highlighted as their own language, guessed from
the file name only (never from content: the content is untrusted); other files with
Pygments' diff lexer. Pygments escapes every character of the content, and the file paths
are escaped by the page template, so nothing from the repository becomes markup. Large
files and large diffs are cut with a note instead of making the page unusable.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from markupsafe import Markup

# The project does not ship Pygments' type stubs (types-Pygments); these names are Any.
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import (
    DiffLexer,
    TextLexer,
    get_lexer_for_filename,
)
from pygments.util import ClassNotFound

from portal.integrations.gitops import GitOpsRepo

MAX_FILE_LINES = 1500  # per file, shown before "truncated"
MAX_LINE_CHARS = 2000  # minified files would otherwise make one enormous line
MAX_TOTAL_LINES = 20_000  # over the whole diff; later files are listed but not shown
LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"

_HEADER = re.compile(r"^diff --git (?P<rest>.*)$")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f"}
_ESCAPES |= {"r": "\r", "v": "\v"}


@dataclass(frozen=True)
class FileDiff:
    """The part of a unified diff about one file."""

    path: str
    change: str  # added, deleted, modified or mode (only the file mode changed)
    hunks: tuple[str, ...]  # every line from the first "@@", without line endings
    binary: bool = False

    @property
    def additions(self) -> int:
        """Count the added lines."""
        return sum(line.startswith("+") for line in self.hunks)

    @property
    def deletions(self) -> int:
        """Count the removed lines."""
        return sum(line.startswith("-") for line in self.hunks)


@dataclass(frozen=True)
class RenderedFile:
    """One file of the diff, ready for the page: ``html`` is safe, highlighted markup."""

    index: int
    path: str
    change: str
    additions: int
    deletions: int
    language: str
    html: Markup
    shown_lines: int
    total_lines: int
    binary: bool = False
    omitted: bool = False  # over the diff's size budget: listed, not shown

    @property
    def anchor(self) -> str:
        """Return the element id of the file's section (paths never become ids)."""
        return f"file-{self.index}"

    @property
    def generated(self) -> bool:
        """Tell whether the file is a tool's lock (pins and hashes): shown collapsed."""
        return self.path.endswith(".lock")

    @property
    def truncated(self) -> bool:
        """Tell whether only the beginning of the file is shown."""
        return self.shown_lines < self.total_lines


@dataclass
class TreeNode:
    """A folder (``file`` is None) or a file of the changed-files tree."""

    name: str
    path: str
    file: RenderedFile | None = None
    children: list[TreeNode] = field(default_factory=list)


@dataclass(frozen=True)
class RenderedDiff:
    """A whole diff: its files in order, their tree, and the totals."""

    files: tuple[RenderedFile, ...]
    tree: tuple[TreeNode, ...]

    @property
    def additions(self) -> int:
        """Count the added lines of every file."""
        return sum(file.additions for file in self.files)

    @property
    def deletions(self) -> int:
        """Count the removed lines of every file."""
        return sum(file.deletions for file in self.files)


def _unquote(path: str) -> str:
    """Undo git's C-style quoting of unusual paths (octal bytes and backslash escapes)."""
    if not (len(path) >= 2 and path.startswith('"') and path.endswith('"')):
        return path
    body, out, index = path[1:-1], bytearray(), 0
    while index < len(body):
        char = body[index]
        if char != "\\" or index + 1 == len(body):
            out += char.encode()
            index += 1
        elif body[index + 1 : index + 4].isdigit() and len(body[index + 1 : index + 4]) == 3:
            out.append(int(body[index + 1 : index + 4], 8) & 0xFF)
            index += 4
        else:
            out += _ESCAPES.get(body[index + 1], body[index + 1]).encode()
            index += 2
    return out.decode(errors="replace")


def _header_path(rest: str) -> str:
    """Read the path of ``diff --git a/P b/P`` (no renames, so both sides are the same)."""
    if rest.startswith('"'):
        end = rest.find('" ', 1)
        while end != -1 and rest[end - 1] == "\\":
            end = rest.find('" ', end + 1)
        first = rest[: end + 1] if end != -1 else rest
        return _unquote(first)[2:]
    length = (len(rest) - 5) // 2
    return rest[2 : 2 + length]


def _side_path(line: str) -> str | None:
    """Read the path of a ``--- a/P`` or ``+++ b/P`` line; None for /dev/null."""
    path = _unquote(line[4:].rstrip("\t"))
    return None if path == "/dev/null" else path[2:]


def split_diff(text: str) -> list[FileDiff]:
    """Split ``git diff`` output into one :class:`FileDiff` per file, in order."""
    files: list[FileDiff] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        header = _HEADER.match(lines[index])
        if header is None:
            index += 1
            continue
        path, change, binary = _header_path(header["rest"]), "modified", False
        index += 1
        while index < len(lines) and not lines[index].startswith(("@@", "diff --git ")):
            line = lines[index]
            if line.startswith("new file mode"):
                change = "added"
            elif line.startswith("deleted file mode"):
                change = "deleted"
            elif line.startswith(("Binary files", "GIT binary patch")):
                binary = True
            elif line.startswith(("+++ ", "--- ")) and (side := _side_path(line)) is not None:
                path = side  # the real side's path ("--- /dev/null" for added files)
            index += 1
        start = index
        while index < len(lines) and not lines[index].startswith("diff --git "):
            index += 1
        hunks = tuple(lines[start:index])
        if not hunks and not binary and change == "modified":
            change = "mode"
        files.append(FileDiff(path, change, hunks, binary))
    return files


def lexer_for(path: str) -> Lexer:
    """Return the lexer for a file name, or plain text when Pygments knows none."""
    try:
        lexer: Lexer = get_lexer_for_filename(PurePosixPath(path).name, stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    return lexer


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …"


def render_file(file: FileDiff, index: int, budget: int = MAX_FILE_LINES) -> RenderedFile:
    """Highlight one file, showing at most ``budget`` lines (and never more than the cap)."""
    limit = max(0, min(budget, MAX_FILE_LINES))
    linenos: str | bool
    if file.change == "added" and not file.binary:
        # The new file's content: every "+" line (the "\ No newline" marker is not content).
        body = [line[1:] for line in file.hunks if line.startswith("+")]
        lexer, linenos = lexer_for(file.path), "table"
    else:
        body, lexer, linenos = list(file.hunks), DiffLexer(stripnl=False), False
    shown = body[:limit]
    html = Markup("")
    if shown and not file.binary:
        formatter = HtmlFormatter(cssclass="highlight", linenos=linenos, wrapcode=True)
        code = "\n".join(_clip(line) for line in shown) + "\n"
        # Safe: Pygments escapes every character of the code it wraps in its markup.
        html = Markup(highlight(code, lexer, formatter))  # noqa: S704
    return RenderedFile(
        index=index,
        path=file.path,
        change=file.change,
        additions=file.additions,
        deletions=file.deletions,
        language=lexer.name if file.change == "added" else "diff",
        html=html,
        shown_lines=len(shown),
        total_lines=len(body),
        binary=file.binary,
        omitted=limit == 0 and bool(body),
    )


def file_tree(files: Iterable[RenderedFile]) -> tuple[TreeNode, ...]:
    """Nest the files by folder; a folder with a single sub-folder is merged into it."""
    root = TreeNode("", "")
    for file in files:
        node = root
        *folders, name = file.path.split("/")
        for depth, folder in enumerate(folders):
            found = next((c for c in node.children if c.file is None and c.name == folder), None)
            if found is None:
                found = TreeNode(folder, "/".join(folders[: depth + 1]))
                node.children.append(found)
            node = found
        node.children.append(TreeNode(name, file.path, file))
    return tuple(_compact(child) for child in root.children)


def _compact(node: TreeNode) -> TreeNode:
    while node.file is None and len(node.children) == 1 and node.children[0].file is None:
        only = node.children[0]
        node = TreeNode(f"{node.name}/{only.name}", only.path, None, only.children)
    node.children = [_compact(child) for child in node.children]
    return node


def render_diff(text: str, *, max_total_lines: int = MAX_TOTAL_LINES) -> RenderedDiff:
    """Split and highlight a whole diff within a budget of shown lines."""
    rendered: list[RenderedFile] = []
    budget = max_total_lines
    for index, file in enumerate(split_diff(text), start=1):
        result = render_file(file, index, budget)
        budget -= result.shown_lines
        rendered.append(result)
    return RenderedDiff(tuple(rendered), file_tree(rendered))


@functools.lru_cache(maxsize=64)
def diff_of_commit(gitops: GitOpsRepo, commit: str) -> RenderedDiff:
    """Render what ``commit`` changed against its first parent (cached: commits never change).

    The first parent is the ``main`` a change was built on, so the diff stays the same
    after the change is merged and ``main`` has moved on.
    """
    return render_diff(gitops.diff(commit, base=gitops.parent_of(commit)))


def _indented(rules: Iterable[str]) -> str:
    return "\n".join(f"  {rule}" for rule in rules)


@functools.cache
def stylesheet() -> str:
    """Return the CSS of the highlighted code, light and dark, scoped to ``.highlight``."""
    light: HtmlFormatter[str] = HtmlFormatter(style=LIGHT_STYLE)
    dark: HtmlFormatter[str] = HtmlFormatter(style=DARK_STYLE)
    # types-pygments leaves get_token_style_defs unannotated.
    light_defs: str = light.get_token_style_defs(".highlight")  # type: ignore[no-untyped-call]
    dark_defs: str = dark.get_token_style_defs(".highlight")  # type: ignore[no-untyped-call]
    parts: Sequence[str] = (
        "/* Generated by Pygments for portal.review.diff (styles "
        f"{LIGHT_STYLE} and {DARK_STYLE}). */",
        "@media not (prefers-color-scheme: dark) {",
        _indented(light_defs),
        "}",
        "@media (prefers-color-scheme: dark) {",
        _indented(dark_defs),
        "}",
    )
    return "\n".join(parts) + "\n"
