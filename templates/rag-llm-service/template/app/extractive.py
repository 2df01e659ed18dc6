"""Answers and citations, and the extractive answerer used when no LLM is configured.

The extractive answerer quotes, word for word, the sentences of the retrieved passages
that share the most words with the question, each followed by its passage's number
(``[2]``). A citation's number is the passage's rank among the hits given (the same
numbering the LLM sees), and for an extractive answer its snippet is the quoted text, so
"every cited passage contains the quoted words" can be checked (the evaluation's
faithfulness).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Container, Iterator, Sequence
from typing import Any

from .chunking import Hit

MODE_LLM = "llm"
MODE_EXTRACTIVE = "extractive"
MODE_NONE = "none"
I_DONT_KNOW = (
    "I don't know: no passage of the documents is relevant enough to answer this question."
)
MAX_QUOTES = 3
MAX_QUOTES_PER_PASSAGE = 2
FOLLOWING_SPANS = 2  # lines quoted after a sentence ending with a colon, at most
SNIPPET_CHARS = 280
_WORD = re.compile(r"[a-z0-9]+")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)]|>)\s+")
_TABLE_ROW = re.compile(r"^\s*\|")
_RULE = re.compile(r"^\s*([-*_=|:\s])\1*\s*$|^\s*\|?\s*:?-{3,}")
# A sentence ends at . ! or ? followed by space and what can start the next one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[*])")
_STOPWORDS = (
    "a an and are as at be been by can could did do does for from had has have how i if in "
    "into is it its me my of on or our should so than that the their them then there these "
    "they this to was we were what when where which who why will with would you your"
)
STOPWORDS = frozenset(_STOPWORDS.split())


def no_usage() -> dict[str, Any]:
    """Return the usage of an answer that called no LLM."""
    return {"input_tokens": 0, "output_tokens": 0, "estimated": False}


@dataclasses.dataclass
class Citation:
    """A numbered passage an answer rests on."""

    number: int
    source: str
    heading: str
    snippet: str
    score: float


@dataclasses.dataclass
class Answer:
    """An answer, how it was made (``mode``), its citations and what produced it."""

    text: str
    mode: str  # "llm", "extractive" or "none" ("I don't know": nothing relevant)
    citations: list[Citation]
    prompt_name: str = ""
    prompt_version: int = 0
    usage: dict[str, Any] = dataclasses.field(default_factory=no_usage)
    embedding: str = ""
    prompt_label: str = ""
    model: str = ""


def terms(text: str) -> set[str]:
    """Return the words of ``text`` that carry meaning, lower-cased and lightly stemmed."""
    found = set()
    for word in _WORD.findall(text.lower()):
        if word in STOPWORDS:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
        # release, releases, released -> releas: one stem for the forms of a word.
        found.add(word[:-1] if word.endswith("e") and len(word) > 3 else word)
    return found


def _blocks(text: str) -> Iterator[tuple[int, int]]:
    """Yield the spans of paragraphs, list items and code lines; headings and fences skipped."""
    start: int | None = None
    end = 0
    code = False
    offset = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        here, offset = offset, offset + len(line)
        fence = bool(_FENCE.match(body))
        item = _ITEM.match(body)
        row = _TABLE_ROW.match(body)
        blank = not body.strip()
        boundary = blank or fence or code or item or row or _HEADING.match(body)
        if start is not None and (boundary or _RULE.match(body)):
            yield start, end
            start = None
        if fence:
            code = not code
            continue
        if blank or _HEADING.match(body) or (not code and _RULE.match(body)):
            continue
        if code:
            yield here, here + len(body)
            continue
        if start is None:
            start = here + (item.end() if item else 0)
        end = here + len(body)
    if start is not None:
        yield start, end


def sentences(text: str) -> list[tuple[int, int]]:
    """Return the spans of ``text``'s sentences (exact offsets, spaces trimmed)."""
    spans = []
    for start, end in _blocks(text):
        block = text[start:end]
        cut = 0
        for match in [*_SENTENCE_END.finditer(block), None]:
            stop = match.start() if match else len(block)
            piece = block[cut:stop]
            left = len(piece) - len(piece.lstrip())
            right = len(piece.rstrip())
            if right > left:
                spans.append((start + cut + left, start + cut + right))
            cut = match.end() if match else cut
    return spans


def squeeze(text: str, limit: int = SNIPPET_CHARS) -> str:
    """Collapse whitespace and cut at a word boundary within ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > limit // 2 else limit]


def citation_of(
    number: int, hit: Hit, snippet: str | None = None, limit: int | None = SNIPPET_CHARS
) -> Citation:
    """Cite ``hit`` as passage ``number``; the snippet is the passage's start unless given."""
    chunk = hit.chunk
    text = chunk.text if snippet is None else snippet
    return Citation(
        number=number,
        source=chunk.source,
        heading=chunk.heading,
        snippet=squeeze(text, limit) if limit else " ".join(text.split()),
        score=round(float(hit.score), 4),
    )


def best_sentence(question: str, text: str) -> str | None:
    """Return the sentence of ``text`` sharing the most words with the question, if any does."""
    wanted = terms(question)
    best, most = None, 0
    for start, end in sentences(text):
        shared = len(wanted & terms(text[start:end]))
        if shared > most:
            best, most = text[start:end], shared
    return best


def _with_what_follows(spans: list[str], position: int, taken: Container[int] = ()) -> list[str]:
    """Return the sentence and, when it ends with a colon, the lines it introduces (untaken)."""
    quoted = [spans[position]]
    length = len(spans[position])
    following = position + 1
    while (
        quoted[-1].rstrip().endswith(":")
        and following < len(spans)
        and following not in taken
        and len(quoted) <= FOLLOWING_SPANS
        and length + len(spans[following]) <= SNIPPET_CHARS * 2
    ):
        # "Roll the Deployment back:" is only useful with the command after it.
        quoted.append(spans[following])
        length += len(spans[following])
        following += 1
    return quoted


def _quotes(question: str, hits: Sequence[Hit]) -> list[tuple[int, int, list[str]]]:
    """Pick what to quote: (passage rank, position, sentences), in reading order."""
    wanted = terms(question)
    scored = []
    texts: dict[int, list[str]] = {}
    for rank, hit in enumerate(hits, start=1):
        text = hit.chunk.text
        texts[rank] = [text[start:end] for start, end in sentences(text)]
        for position, sentence in enumerate(texts[rank]):
            shared = len(wanted & terms(sentence))
            if shared:
                # More shared words first, then the better passage, then the earlier sentence.
                scored.append((-shared, rank, position))
    scored.sort()
    chosen: list[tuple[int, int, list[str]]] = []
    covered: set[tuple[int, int]] = set()
    per_passage: dict[int, int] = {}
    for _score, rank, position in scored:
        if per_passage.get(rank, 0) >= MAX_QUOTES_PER_PASSAGE or (rank, position) in covered:
            continue
        taken = {at for passage, at in covered if passage == rank}
        quoted = _with_what_follows(texts[rank], position, taken)
        covered.update((rank, position + offset) for offset in range(len(quoted)))
        per_passage[rank] = per_passage.get(rank, 0) + 1
        chosen.append((rank, position, quoted))
        if len(chosen) == MAX_QUOTES:
            break
    if not chosen and hits and texts[1]:  # nothing shares a word: the best passage's start
        chosen.append((1, 0, _with_what_follows(texts[1], 0)))
    return sorted(chosen, key=lambda item: item[:2])


def _joined(parts: Sequence[str]) -> str:
    # An ellipsis between the parts: the faithfulness check finds each in order.
    return " … ".join(squeeze(part, 10 * SNIPPET_CHARS) for part in parts)


def extractive_answer(question: str, hits: Sequence[Hit]) -> Answer:
    """Quote the best sentences of ``hits`` with numbered citations; "I don't know" if none."""
    quotes = _quotes(question, hits)
    if not quotes:
        return Answer(text=I_DONT_KNOW, mode=MODE_NONE, citations=[])
    lines = [f'"{_joined(parts)}" [{rank}]' for rank, _, parts in quotes]
    citations = []
    for rank in dict.fromkeys(rank for rank, _, _ in quotes):
        quoted = _joined([part for r, _, parts in quotes if r == rank for part in parts])
        citations.append(citation_of(rank, hits[rank - 1], quoted, limit=None))
    return Answer(text="\n".join(lines), mode=MODE_EXTRACTIVE, citations=citations)
