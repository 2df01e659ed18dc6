"""A change's unified diff as reviewers read it: split per file, highlighted rows, a file tree.

Added files (what scaffolds produce) are highlighted as their own language, guessed from
the file name only (never from content: the content is untrusted); other files with
Pygments' diff lexer. Each line becomes a row with its numbers on the old and new side, so
review comments can sit at a line. Pygments escapes every character of the content, and
the file paths are escaped by the page template, so nothing from the repository becomes
markup. Which files are shown at once and which wait for "Show diff" is
:mod:`portal.review.diff_files`' decision.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Protocol

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
from pygments.styles import get_style_by_name
from pygments.token import Text
from pygments.util import ClassNotFound

MAX_FILE_LINES = 5000  # rows of one file shown before "truncated"
MAX_LINE_CHARS = 2000  # minified files would otherwise make one enormous line
# What a cut line ends with; constant markup, nothing from the repository.
CLIPPED = Markup(' <span class="clipped" title="cut at 2,000 characters">…</span>')
LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"

_HEADER = re.compile(r"^diff --git (?P<rest>.*)$")
_SPAN = re.compile(r'<span class="(?P<classes>[^"]+)">(?P<text>[^<]*)</span>')
_RULE = re.compile(r"\.highlight \.(?P<name>[\w-]+) \{ (?P<body>[^}]*)\}")
_HUNK = re.compile(r"^@@ -(?P<old>\d+)(?:,\d+)? \+(?P<new>\d+)(?:,\d+)? @@")
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
class Row:
    """One line of a file as the page shows it: its numbers on each side and safe markup."""

    kind: str  # new (a line of an added file), add, del, ctx, hunk (an @@ header), note
    old: int | None
    new: int | None
    html: Markup

    @property
    def side(self) -> str | None:
        """Return the side a comment on this row refers to (None: not a line of the file)."""
        if self.kind == "del":
            return "old"
        return "new" if self.new is not None else None

    @property
    def line(self) -> int | None:
        """Return the line number on :attr:`side`."""
        return self.old if self.kind == "del" else self.new


@dataclass(frozen=True)
class RenderedFile:
    """The rows of one file, highlighted, with how many of its lines they show."""

    rows: tuple[Row, ...]
    language: str
    shown_lines: int
    total_lines: int

    @property
    def truncated(self) -> bool:
        """Tell whether only the beginning of the file is shown."""
        return self.shown_lines < self.total_lines


@dataclass
class TreeNode:
    """A folder (``file`` is None) or a file of the changed-files tree."""

    name: str
    path: str
    file: TreeFile | None = None
    children: list[TreeNode] = field(default_factory=list)


class TreeFile(Protocol):
    """What the tree needs of a file: its path, anchor and counts."""

    @property
    def path(self) -> str:
        """Return the file's path in the repository."""
        ...


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


@functools.cache
def _styled_classes() -> frozenset[str]:
    """Return the token classes whose rules change how text looks.

    Left out: whitespace (invisible), and classes that only set a style's own text colour
    (github-dark's names and punctuation), which the text has anyway.
    """
    plain = {
        f"color: #{colour}".lower()
        for name in (LIGHT_STYLE, DARK_STYLE)
        if (colour := get_style_by_name(name).style_for_token(Text)["color"])
    }
    rules: dict[str, set[str]] = {}
    for found in _RULE.finditer(stylesheet()):
        declarations = {part.strip().lower() for part in found["body"].split(";")}
        rules.setdefault(found["name"], set()).update(declarations - {""})
    return frozenset(name for name, body in rules.items() if body - plain and name != "w")


def _lean(match: re.Match[str]) -> str:
    kept = [name for name in match["classes"].split() if name in _styled_classes()]
    return f'<span class="{" ".join(kept)}">{match["text"]}</span>' if kept else match["text"]


def _highlighted(lines: Sequence[str], lexer: Lexer) -> list[Markup]:
    """Highlight ``lines`` as one text and split the markup back into one piece per line.

    Pygments closes and reopens its spans at every line end, so each piece is balanced.
    Spans whose classes no rule of the stylesheet styles are dropped (their text stays):
    the same look, and a third less markup on a page of YAML.
    """
    if not lines:
        return []
    code = "\n".join(line[:MAX_LINE_CHARS] for line in lines) + "\n"
    # Safe: Pygments escapes every character of the code it wraps in its markup; its spans
    # are flat (never nested) and their text holds no "<", which _SPAN relies on.
    html = _SPAN.sub(_lean, highlight(code, lexer, HtmlFormatter(nowrap=True)))
    pieces = html.split("\n")
    return [
        Markup(piece) + (CLIPPED if len(line) > MAX_LINE_CHARS else "")  # noqa: S704
        for piece, line in zip(pieces, lines, strict=False)
    ]


def _numbered(hunks: Sequence[str]) -> list[tuple[str, int | None, int | None]]:
    """Give each hunk line its kind and its numbers on the old and the new side."""
    numbered: list[tuple[str, int | None, int | None]] = []
    old = new = 0
    for line in hunks:
        header = _HUNK.match(line)
        if header is not None:
            old, new = int(header["old"]), int(header["new"])
            numbered.append(("hunk", None, None))
        elif line.startswith("+"):
            numbered.append(("add", None, new))
            new += 1
        elif line.startswith("-"):
            numbered.append(("del", old, None))
            old += 1
        elif line.startswith(" "):
            numbered.append(("ctx", old, new))
            old, new = old + 1, new + 1
        else:  # "\ No newline at end of file"
            numbered.append(("note", None, None))
    return numbered


def render_file(file: FileDiff, limit: int = MAX_FILE_LINES) -> RenderedFile:
    """Highlight one file into rows, at most ``limit`` of them.

    An added file shows its content highlighted as its language, numbered from 1; other
    files show their hunks with Pygments' diff lexer and both sides' numbers.
    """
    if file.binary:
        return RenderedFile((), "binary", 0, 0)
    if file.change == "added":
        # The new file's content: every "+" line (the "\ No newline" marker is not content).
        body = [line[1:] for line in file.hunks if line.startswith("+")]
        lexer = lexer_for(file.path)
        shown = body[:limit]
        rows = tuple(
            Row("new", None, number, html)
            for number, html in enumerate(_highlighted(shown, lexer), start=1)
        )
        return RenderedFile(rows, lexer.name, len(shown), len(body))
    shown = list(file.hunks[:limit])
    numbers = _numbered(shown)
    pieces = _highlighted(shown, DiffLexer(stripnl=False))
    rows = tuple(
        Row(kind, old, new, html) for (kind, old, new), html in zip(numbers, pieces, strict=True)
    )
    return RenderedFile(rows, "diff", len(shown), len(file.hunks))


def file_tree(files: Iterable[TreeFile]) -> tuple[TreeNode, ...]:
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
