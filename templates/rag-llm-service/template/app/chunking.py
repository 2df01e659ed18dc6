"""Splitting a document into chunks that keep their source, heading path and offsets.

Markdown (and HTML, whose headings :mod:`app.documents` writes as markdown heading lines)
is first cut into sections by langchain's ``MarkdownHeaderTextSplitter``, which knows the
heading path of each; each section is then cut by ``RecursiveCharacterTextSplitter`` to
the configured size. Plain text gets the second splitter only.

The header splitter rewrites what it returns (lines stripped, paragraphs re-joined), so its
text is not used: each section is found again in the document by its heading line, and
the recursive splitter runs on the document's own slice. Every chunk's text is therefore
exactly ``document.text[chunk.start:chunk.end]``, which is what a citation can point at.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from .documents import Document
from .rag_config import RagConfig

_HEADERS = [("#" * level, f"h{level}") for level in range(1, 7)]
# Paragraphs, lines, sentences, words: the recursive splitter cuts at the first that fits.
_SEPARATORS = ["\n\n", "\n", ". ", " ", ""]
# A fixed namespace: a chunk's id depends only on what it is, so re-ingesting the same
# text under the same source overwrites the same Qdrant point.
_NAMESPACE = uuid.UUID("6f1d7c0e-3b0a-5d8e-9a43-52b1c1a0f7e2")


@dataclass(frozen=True)
class Chunk:
    """A passage of a document, as indexed and cited."""

    id: str
    source: str
    heading: str
    text: str
    start: int
    end: int
    document_sha256: str


@dataclass(frozen=True)
class Hit:
    """A chunk found for a question, with its similarity (higher is closer)."""

    chunk: Chunk
    score: float


def chunk_id(source: str, start: int, text: str) -> str:
    """Derive a chunk's stable id (a UUID, as Qdrant wants) from where it is and what it says."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return str(uuid.uuid5(_NAMESPACE, f"{source}\x00{start}\x00{digest}"))


def embedding_text(chunk: Chunk) -> str:
    """Return the text a chunk is embedded from: its heading path, then its own text.

    The heading says what a passage deep in a section is about ("Rollback > With Flux")
    when the passage itself does not.
    """
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


def split_document(doc: Document, config: RagConfig) -> list[Chunk]:
    """Cut a document into chunks of at most ``config.chunk_size`` characters."""
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=config.chunk_size,
        chunk_overlap=config.chunk_overlap,
        separators=_SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    sections = [(0, len(doc.text), "")] if doc.kind == "text" else _sections(doc.text)
    chunks: list[Chunk] = []
    for start, end, heading in sections:
        body = doc.text[start:end]
        cursor = 0
        for piece in splitter.split_text(body):
            if _only_headings(piece):
                continue
            # The pieces come in order and may overlap; search from just after the last
            # one's start so a repeated sentence is found at its own place.
            found = body.find(piece, cursor)
            if found < 0:
                found = body.find(piece)
            if found < 0:  # cannot happen: the splitter returns slices of its input
                continue
            cursor = found + 1
            offset = start + found
            chunks.append(
                Chunk(
                    id=chunk_id(doc.source, offset, piece),
                    source=doc.source,
                    heading=heading,
                    text=piece,
                    start=offset,
                    end=offset + len(piece),
                    document_sha256=doc.sha256,
                )
            )
    return chunks


def _only_headings(piece: str) -> bool:
    # A heading with no text under it (before its first subsection) says nothing alone.
    return all(line.lstrip().startswith("#") for line in piece.splitlines() if line.strip())


def _sections(text: str) -> list[tuple[int, int, str]]:
    """Return (start, end, heading path) of each section of a markdown text."""
    splitter = MarkdownHeaderTextSplitter(headers_to_split_on=_HEADERS, strip_headers=False)
    headings = _heading_lines(text)
    starts: list[tuple[int, str]] = []
    line_index = 0
    for section in splitter.split_text(text):
        path = " > ".join(
            section.metadata[name] for _, name in _HEADERS if section.metadata.get(name)
        )
        first = section.page_content.split("\n", 1)[0].strip()
        if not first.startswith("#"):
            # Text before the first heading: the document's own preamble.
            if not starts:
                starts.append((0, path))
            continue
        while line_index < len(headings) and headings[line_index][1] != first:
            line_index += 1
        if line_index == len(headings):
            break  # not found again: leave the rest to the previous section
        starts.append((headings[line_index][0], path))
        line_index += 1
    if not starts or starts[0][0] != 0:
        starts.insert(0, (0, ""))
    bounds = [position for position, _ in starts[1:]] + [len(text)]
    return [(start, end, path) for (start, path), end in zip(starts, bounds, strict=True)]


def _heading_lines(text: str) -> list[tuple[int, str]]:
    """Return (offset, stripped line) of each line outside a fenced code block."""
    lines: list[tuple[int, str]] = []
    offset = 0
    fence = ""
    for line in text.split("\n"):
        stripped = "".join(filter(str.isprintable, line.strip()))
        if fence:
            if stripped.startswith(fence):
                fence = ""
        elif stripped.startswith("```") and stripped.count("```") == 1:
            fence = "```"
        elif stripped.startswith("~~~"):
            fence = "~~~"
        elif stripped.startswith("#"):
            lines.append((offset, stripped))
        offset += len(line) + 1
    return lines
