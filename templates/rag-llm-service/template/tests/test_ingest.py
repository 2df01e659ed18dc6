"""Ingestion: incremental by digest, removals, updates, uploads, and files refused by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.ingest import IngestError, Ingestor, upload_source
from app.rag_config import RagConfig
from app.vectorstore import ChunkStore

from .conftest import DOCS


@pytest.fixture
def ingestor(lexical_store: ChunkStore, rag_config: RagConfig) -> Ingestor:
    """Return an ingestor over the empty lexical index, with a 10 kB file limit."""
    return Ingestor(lexical_store, rag_config, max_bytes=10_000)


def _found(store: ChunkStore, question: str) -> set[str]:
    return {hit.chunk.source for hit in store.search(store.embedder.embed_query(question), 10)}


def test_a_folder_is_ingested_then_found_unchanged(
    ingestor: Ingestor, docs_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every document is added; ingesting again reads no file past its digest, writes nothing."""
    report = ingestor.ingest_folder(docs_folder)
    assert report.added == sorted(DOCS)
    assert report.updated == report.removed == report.errors == report.unchanged == []
    assert report.chunks == ingestor.store.count() > len(DOCS)
    assert _found(ingestor.store, "flux suspend kustomization") == {"rollback.md"}
    assert _found(ingestor.store, "handover note") == {"notes/oncall.txt"}
    written: list[str] = []
    monkeypatch.setattr(ingestor.store, "replace_source", lambda source, *_: written.append(source))
    again = ingestor.ingest_folder(docs_folder)
    assert again.unchanged == sorted(DOCS)
    assert again.added == again.updated == again.removed == written == []
    assert again.chunks == 0


def test_an_updated_file_replaces_its_chunks(ingestor: Ingestor, docs_folder: Path) -> None:
    """The old version's chunks go, the new one's are searchable, the others untouched."""
    ingestor.ingest_folder(docs_folder)
    before = ingestor.store.count()
    (docs_folder / "certificates.md").write_text("# Certificates\n\nUse vault for secrets.\n")
    report = ingestor.ingest_folder(docs_folder)
    assert report.updated == ["certificates.md"]
    assert report.unchanged == sorted(set(DOCS) - {"certificates.md"})
    assert _found(ingestor.store, "ClusterIssuer ACME challenge") == set()
    assert _found(ingestor.store, "vault secrets") == {"certificates.md"}
    assert ingestor.store.count() == before  # one chunk for one chunk
    info = {document.source: document for document in ingestor.documents()}
    assert info["certificates.md"].chunks == 1


def test_a_removed_file_loses_its_chunks(ingestor: Ingestor, docs_folder: Path) -> None:
    """A folder document whose file is gone is removed from the index."""
    ingestor.ingest_folder(docs_folder)
    (docs_folder / "rollback.md").unlink()
    report = ingestor.ingest_folder(docs_folder)
    assert report.removed == ["rollback.md"]
    assert _found(ingestor.store, "flux suspend kubectl rollout") == set()
    assert [document.source for document in ingestor.documents()] == sorted(
        set(DOCS) - {"rollback.md"}
    )


def test_bad_files_are_reported_by_name_and_the_rest_ingested(
    ingestor: Ingestor, docs_folder: Path
) -> None:
    """Too big, not UTF-8, another type, hidden: each handled; the good files still go in."""
    (docs_folder / "huge.md").write_text("word " * 3_000)
    (docs_folder / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (docs_folder / "diagram.png").write_bytes(b"\x89PNG")
    (docs_folder / ".git").mkdir()
    (docs_folder / ".git" / "HEAD.md").write_text("# not a document\n\ntext\n")
    report = ingestor.ingest_folder(docs_folder)
    assert report.added == sorted(DOCS)
    assert report.skipped == ["diagram.png"]
    assert report.errors == [
        {"file": "huge.md", "error": "huge.md: 15,000 bytes is over the limit of 10,000 bytes"},
        {"file": "latin.txt", "error": "latin.txt: not UTF-8 text (invalid byte at offset 3)"},
    ]


def test_a_file_that_turns_bad_keeps_its_last_good_version(
    ingestor: Ingestor, docs_folder: Path
) -> None:
    """An error is reported and the earlier chunks stay searchable (the file is not gone)."""
    ingestor.ingest_folder(docs_folder)
    (docs_folder / "rollback.md").write_bytes(b"\xff\xfe broken")
    report = ingestor.ingest_folder(docs_folder)
    assert [error["file"] for error in report.errors] == ["rollback.md"]
    assert report.removed == []
    assert _found(ingestor.store, "flux suspend") == {"rollback.md"}


def test_a_link_out_of_the_folder_is_refused(
    ingestor: Ingestor, docs_folder: Path, tmp_path: Path
) -> None:
    """A symbolic link to a file elsewhere is not read."""
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\npassword hunter2\n")
    os.symlink(secret, docs_folder / "leak.md")
    report = ingestor.ingest_folder(docs_folder)
    assert report.errors == [
        {"file": "leak.md", "error": "leak.md: a link to a file outside the documents folder"}
    ]
    assert _found(ingestor.store, "password hunter2") == set()


def test_a_missing_folder_is_an_error(ingestor: Ingestor, tmp_path: Path) -> None:
    """Not a folder: nothing is removed, the caller is told."""
    with pytest.raises(IngestError, match="not a folder"):
        ingestor.ingest_folder(tmp_path / "nowhere")


def test_uploads_are_indexed_by_file_name_and_survive_folder_ingestion(
    ingestor: Ingestor, docs_folder: Path
) -> None:
    """Uploads are their own documents: a folder ingestion does not remove them."""
    upload = ("../../etc/runbook.md", b"# Paging\n\nPage the database team with pagerduty.\n")
    report = ingestor.ingest_files([upload])
    assert report.added == ["runbook.md"]
    folder = ingestor.ingest_folder(docs_folder)
    assert folder.removed == []
    assert _found(ingestor.store, "pagerduty database") == {"runbook.md"}
    again = ingestor.ingest_files([("runbook.md", upload[1])])
    assert again.unchanged == ["runbook.md"] and again.chunks == 0
    origins = {document.source: document.origin for document in ingestor.documents()}
    assert origins["runbook.md"] == "upload" and origins["rollback.md"] == "folder"


def test_bad_uploads_are_reported_by_name(ingestor: Ingestor) -> None:
    """Wrong type, twice in one request, no name, too big: each error names the file."""
    report = ingestor.ingest_files(
        [
            ("notes.md", b"# Notes\n\nfirst\n"),
            ("notes.md", b"# Notes\n\nsecond\n"),
            ("tool.exe", b"MZ"),
            ("", b"text"),
            ("big.txt", b"x " * 6_000),
        ]
    )
    assert report.added == ["notes.md"]
    assert report.errors == [
        {"file": "notes.md", "error": "notes.md: given twice in one upload"},
        {
            "file": "tool.exe",
            "error": "tool.exe: unsupported file type (.exe); accepted: .htm, .html, "
            ".markdown, .md, .txt",
        },
        {"file": "", "error": "'': an upload needs a file name"},
        {"file": "big.txt", "error": "big.txt: 12,000 bytes is over the limit of 10,000 bytes"},
    ]


def test_upload_names_keep_only_their_last_part() -> None:
    """Paths (POSIX or Windows) are cut to the file name; control characters are refused."""
    assert upload_source("a/b/c.md") == "c.md"
    assert upload_source("runbooks\\oncall\\notes.txt") == "notes.txt"
    with pytest.raises(ValueError, match="without control characters"):
        upload_source("bad\x07name.md")
    with pytest.raises(ValueError, match="at most 200 characters"):
        upload_source("x" * 300 + ".md")
