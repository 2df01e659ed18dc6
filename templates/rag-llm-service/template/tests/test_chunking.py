"""Splitting: header-aware sections, sized chunks, exact offsets, stable ids."""

from __future__ import annotations

import dataclasses
import itertools

from app.chunking import Chunk, chunk_id, embedding_text, split_document
from app.documents import Document, read_document
from app.rag_config import RagConfig

from .conftest import DOCS

RUNBOOK = """Read this before a deploy.

# Runbook

## Rollback

Every rollback starts the same way.

### With Flux

Suspend the kustomization with flux suspend, then revert the commit.

### With kubectl

Run kubectl rollout undo.

```bash
## Scaling
kubectl rollout status deployment/web
```

## Scaling

Scale the deployment with kubectl scale.
"""


def _document(text: str, source: str = "runbook.md") -> Document:
    return read_document(source, text.encode(), 1_000_000)


def _assert_offsets(document: Document, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        assert document.text[chunk.start : chunk.end] == chunk.text
        assert chunk.source == document.source
        assert chunk.document_sha256 == document.sha256


def test_markdown_chunks_carry_their_heading_path_and_exact_offsets(
    rag_config: RagConfig,
) -> None:
    """Each chunk's heading path is where it sits; its text is the document's slice."""
    document = _document(RUNBOOK)
    chunks = split_document(document, rag_config)
    _assert_offsets(document, chunks)
    by_heading = {chunk.heading: chunk.text for chunk in chunks}
    assert by_heading[""] == "Read this before a deploy."
    assert by_heading["Runbook > Rollback"].startswith("# Runbook")
    assert "Every rollback starts the same way." in by_heading["Runbook > Rollback"]
    # A "## Scaling" line inside a code block is not a heading: the block stays put.
    kubectl = by_heading["Runbook > Rollback > With kubectl"]
    assert kubectl.startswith("### With kubectl\n\nRun kubectl rollout undo.")
    assert kubectl.endswith("```")
    assert by_heading["Runbook > Rollback > With Flux"] == (
        "### With Flux\n\nSuspend the kustomization with flux suspend, then revert the commit."
    )
    assert by_heading["Runbook > Scaling"].startswith("## Scaling")
    assert [chunk.start for chunk in chunks] == sorted(chunk.start for chunk in chunks)


def test_html_headings_give_heading_paths(rag_config: RagConfig) -> None:
    """HTML is split on its headings like markdown; offsets point into its text."""
    document = read_document("alerts.html", DOCS["alerts.html"].encode(), 100_000)
    chunks = split_document(document, rag_config)
    _assert_offsets(document, chunks)
    assert [chunk.heading for chunk in chunks] == ["Alerting", "Alerting > Silences"]
    assert "never indexed" not in document.text


def test_text_files_are_not_split_on_hash_lines(rag_config: RagConfig) -> None:
    """A plain text file has no headings, even with lines starting with '#'."""
    document = _document("# not a heading\n\nsome text\n", source="notes.txt")
    chunks = split_document(document, rag_config)
    assert [(chunk.heading, chunk.text) for chunk in chunks] == [
        ("", "# not a heading\n\nsome text")
    ]


def test_long_sections_are_cut_to_size_with_overlap(rag_config: RagConfig) -> None:
    """No chunk is longer than chunk_size; neighbours share up to chunk_overlap characters."""
    # Sentences shorter than the overlap, so neighbours can share whole sentences.
    sentences = " ".join(f"Step {n} adds a pod." for n in range(80))
    document = _document(f"# Scaling\n\n{sentences}\n")
    chunks = split_document(document, rag_config)
    _assert_offsets(document, chunks)
    assert len(chunks) > 5
    assert all(len(chunk.text) <= rag_config.chunk_size for chunk in chunks)
    assert all(chunk.heading == "Scaling" for chunk in chunks)
    overlaps = [before.end - after.start for before, after in itertools.pairwise(chunks)]
    assert any(overlap > 0 for overlap in overlaps)
    assert all(overlap <= rag_config.chunk_overlap for overlap in overlaps)
    # Everything is covered: no text falls between two chunks.
    assert all(after.start <= before.end + 1 for before, after in itertools.pairwise(chunks))


def test_repeated_text_gets_the_offsets_of_each_occurrence(rag_config: RagConfig) -> None:
    """The same paragraph twice is two chunks at two places, with two ids."""
    paragraph = "Restart the exporter and check the scrape target. " * 5
    document = _document(f"# A\n\n{paragraph}\n\n{paragraph}\n\n{paragraph}\n", source="r.txt")
    config = dataclasses.replace(rag_config, chunk_overlap=0)
    chunks = split_document(document, config)
    _assert_offsets(document, chunks)
    starts = [chunk.start for chunk in chunks]
    assert len(set(starts)) == len(starts) == len(chunks) >= 3
    assert len({chunk.id for chunk in chunks}) == len(chunks)


def test_a_heading_with_nothing_under_it_is_no_chunk(rag_config: RagConfig) -> None:
    """A title directly followed by a subsection does not become a chunk of its own."""
    document = _document("# Title\n\n# Other\n\n## Sub\n\nBody text.\n")
    chunks = split_document(document, rag_config)
    assert [(chunk.heading, chunk.text) for chunk in chunks] == [
        ("Other > Sub", "# Other\n\n## Sub\n\nBody text.")
    ]


def test_chunk_ids_are_stable_and_depend_on_source_place_and_text(rag_config: RagConfig) -> None:
    """The same document gives the same ids; another source or text gives others."""
    first = split_document(_document(RUNBOOK), rag_config)
    again = split_document(_document(RUNBOOK), rag_config)
    other = split_document(_document(RUNBOOK, source="copy.md"), rag_config)
    assert [chunk.id for chunk in first] == [chunk.id for chunk in again]
    assert not {chunk.id for chunk in first} & {chunk.id for chunk in other}
    assert chunk_id("a.md", 0, "x") != chunk_id("a.md", 1, "x") != chunk_id("a.md", 0, "y")


def test_the_embedded_text_leads_with_the_heading_path(rag_config: RagConfig) -> None:
    """A passage deep in a section is embedded with the path that says what it is about."""
    chunk = Chunk("id", "a.md", "Rollback > With Flux", "Run it.", 0, 7, "sha")
    assert embedding_text(chunk) == "Rollback > With Flux\nRun it."
    assert embedding_text(dataclasses.replace(chunk, heading="")) == "Run it."
