"""Reading one document: markdown, plain text or HTML, as UTF-8 text with a size limit.

A document's ``text`` is what chunks point into (their character offsets), so it is fixed
here once: line ends normalised to newlines, and HTML turned into text whose headings are
markdown heading lines (``## Rollback``), so one header-aware splitter serves both.
The ``sha256`` is of the file's bytes: re-ingesting an unchanged file is then a no-op.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath

# Suffix -> kind. Anything else is refused with the list of what is accepted.
KINDS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Elements that end a line of text; the others (a, em, code, span...) flow inline.
_BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt"),
        *("figcaption", "figure", "footer", "form", "header", "hr", "li", "main", "nav"),
        *("ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th"),
        *("thead", "tr", "ul"),
    }
)
# Elements whose content is not text a reader sees.
_HIDDEN = frozenset({"script", "style", "template", "noscript", "head", "title", "svg"})


class DocumentError(ValueError):
    """A file that cannot be indexed; the message names the file and the problem."""


@dataclass(frozen=True)
class Document:
    """A document's text as indexed, and the digest of the bytes it was read from."""

    source: str
    kind: str
    text: str
    sha256: str


def kind_of(source: str) -> str | None:
    """Tell the kind of document a file name is ("markdown", "text", "html"), or None."""
    return KINDS.get(PurePosixPath(source).suffix.lower())


def accepted_kind(source: str) -> str:
    """Return the kind of document a file name is, or raise :class:`DocumentError`."""
    kind = kind_of(source)
    if kind is None:
        suffix = PurePosixPath(source).suffix or "no suffix"
        accepted = ", ".join(sorted(KINDS))
        raise DocumentError(f"{source}: unsupported file type ({suffix}); accepted: {accepted}")
    return kind


def read_document(source: str, data: bytes, max_bytes: int) -> Document:
    """Decode a file's bytes into a :class:`Document`, refusing what cannot be indexed."""
    kind = accepted_kind(source)
    if len(data) > max_bytes:
        raise DocumentError(
            f"{source}: {len(data):,} bytes is over the limit of {max_bytes:,} bytes"
        )
    if b"\x00" in data:
        raise DocumentError(f"{source}: binary content (a NUL byte), not a text file")
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(
            f"{source}: not UTF-8 text (invalid byte at offset {error.start})"
        ) from None
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = html_to_text(raw) if kind == "html" else raw
    if not text.strip():
        raise DocumentError(f"{source}: no text to index")
    return Document(source=source, kind=kind, text=text, sha256=hashlib.sha256(data).hexdigest())


def html_to_text(html: str) -> str:
    """Turn HTML into plain text with its headings as markdown heading lines."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return parser.text()


class _TextParser(HTMLParser):
    """Collects visible text, one block element per line, headings marked with ``#``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines: list[str] = []
        self._line: list[str] = []
        self._hidden = 0
        self._pre = 0
        self._heading = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open a block, a heading, a preformatted or a hidden element."""
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _HEADINGS:
            self._break(blank=True)
            self._heading = _HEADINGS[tag]
        elif tag in _BLOCKS:
            self._break(blank=tag in ("p", "pre", "table", "ul", "ol", "blockquote"))
            if tag == "pre":
                self._pre += 1
            elif tag == "li":
                self._line.append("- ")

    def handle_endtag(self, tag: str) -> None:
        """Close what :meth:`handle_starttag` opened."""
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _HEADINGS:
            self._break(blank=True)
            self._heading = 0
        elif tag in _BLOCKS:
            if tag == "pre":
                self._flush_pre()
                self._pre = max(0, self._pre - 1)
            self._break(blank=tag in ("p", "pre", "table", "ul", "ol", "blockquote"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """End the line at a self-closing ``<br/>`` or ``<hr/>``."""
        if tag in _BLOCKS:
            self._break(blank=False)

    def handle_data(self, data: str) -> None:
        """Keep visible text: whitespace collapsed, except inside ``<pre>``."""
        if self._hidden:
            return
        if self._pre:
            self._line.append(data)
            return
        words = " ".join(data.split())
        if not words:
            if self._line and not self._line[-1].endswith(" "):
                self._line.append(" ")
            return
        if data[:1].isspace() and self._line and not self._line[-1].endswith(" "):
            words = " " + words
        if data[-1:].isspace():
            words += " "
        if self._heading and not self._line:
            words = "#" * self._heading + " " + words.lstrip()
        self._line.append(words)

    def _flush_pre(self) -> None:
        # Preformatted text keeps its own lines (a shell session, a config file).
        block = "".join(self._line).strip("\n")
        self._line = []
        self._lines.extend(block.split("\n"))

    def _break(self, *, blank: bool) -> None:
        if self._pre:
            if blank:
                self._flush_pre()
            return
        line = "".join(self._line).strip()
        self._line = []
        if line and line != "-":
            self._lines.append(line)
        if blank and self._lines and self._lines[-1] != "":
            self._lines.append("")

    def text(self) -> str:
        """Return the text collected so far, ending in one newline."""
        self._break(blank=False)
        return "\n".join(self._lines).strip() + "\n"
