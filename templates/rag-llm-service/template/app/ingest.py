"""Ingestion: documents from the docs folder or uploads into the index, incrementally.

A document is identified by its source (its path relative to the folder, or an upload's
file name) and versioned by the sha256 of its bytes: an unchanged file is skipped without
being read past its digest, a changed one has its chunks replaced, and a folder document
whose file is gone has its chunks removed. Uploaded documents are kept until replaced by
another upload of the same name (a folder ingestion never removes them).

A file that cannot be indexed is reported (``errors``: the file and why) and the others
go on; its chunks from an earlier version, if any, stay searchable.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .chunking import embedding_text, split_document
from .documents import DocumentError, accepted_kind, kind_of, read_document
from .rag_config import RagConfig
from .vectorstore import ChunkStore, DocumentInfo

FOLDER = "folder"
UPLOAD = "upload"
MAX_NAME_CHARS = 200


class IngestError(ValueError):
    """The folder asked for cannot be ingested at all (missing, not a folder)."""


@dataclass
class IngestReport:
    """What one ingestion did, by source."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    chunks: int = 0  # chunks written by this ingestion
    errors: list[dict[str, str]] = field(default_factory=list)  # {"file", "error"}
    skipped: list[str] = field(default_factory=list)  # folder files of other types


class Ingestor:
    """Reads, splits, embeds and stores documents; one ingestion at a time."""

    def __init__(self, store: ChunkStore, config: RagConfig, max_bytes: int) -> None:
        self.store = store
        self.config = config
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def ingest_folder(self, folder: Path) -> IngestReport:
        """Bring the index in step with a folder's documents (all its subfolders too).

        Hidden files and folders (``.git``) are not read; files of other types are listed
        in ``skipped``; symbolic links leading out of the folder are refused.
        """
        if not folder.is_dir():
            raise IngestError(f"{folder}: not a folder")
        root = folder.resolve()
        report = IngestReport()
        with self._lock:
            known = self.store.sources()
            present: set[str] = set()
            for path in sorted(folder.rglob("*")):
                relative = path.relative_to(folder)
                if any(part.startswith(".") for part in relative.parts) or path.is_dir():
                    continue
                source = relative.as_posix()
                present.add(source)
                if kind_of(source) is None:
                    report.skipped.append(source)
                    continue
                try:
                    data = self._read(path, root, source)
                except DocumentError as error:
                    report.errors.append({"file": source, "error": str(error)})
                    continue
                self._ingest_one(source, data, FOLDER, known, report)
            for source, info in sorted(known.items()):
                if info.origin == FOLDER and source not in present:
                    self.store.delete_source(source)
                    report.removed.append(source)
        return report

    def _read(self, path: Path, root: Path, source: str) -> bytes:
        try:
            resolved = path.resolve()
            if not resolved.is_relative_to(root):
                raise DocumentError(f"{source}: a link to a file outside the documents folder")
            size = resolved.stat().st_size
            if size > self.max_bytes:
                # Refused before reading: a huge file in the folder costs nothing.
                raise DocumentError(
                    f"{source}: {size:,} bytes is over the limit of {self.max_bytes:,} bytes"
                )
            return resolved.read_bytes()
        except OSError as error:
            raise DocumentError(f"{source}: cannot be read ({error.strerror})") from None

    def ingest_files(self, files: Sequence[tuple[str, bytes]]) -> IngestReport:
        """Index uploaded files, ``(file name, content)`` each; names become their sources."""
        report = IngestReport()
        with self._lock:
            known = self.store.sources()
            seen: set[str] = set()
            for name, data in files:
                try:
                    source = upload_source(name)
                    if source in seen:
                        raise DocumentError(f"{source}: given twice in one upload")
                except DocumentError as error:
                    report.errors.append({"file": name, "error": str(error)})
                    continue
                seen.add(source)
                self._ingest_one(source, data, UPLOAD, known, report)
        return report

    def _ingest_one(
        self,
        source: str,
        data: bytes,
        origin: str,
        known: dict[str, DocumentInfo],
        report: IngestReport,
    ) -> None:
        previous = known.get(source)
        digest = hashlib.sha256(data).hexdigest()
        if previous is not None and previous.sha256 == digest and previous.origin == origin:
            report.unchanged.append(source)
            return
        try:
            document = read_document(source, data, self.max_bytes)
        except DocumentError as error:
            report.errors.append({"file": source, "error": str(error)})
            return
        chunks = split_document(document, self.config)
        if not chunks:
            report.errors.append({"file": source, "error": f"{source}: no text to index"})
            return
        vectors = self.store.embedder.embed_documents([embedding_text(c) for c in chunks])
        self.store.replace_source(source, chunks, vectors, origin)
        report.chunks += len(chunks)
        (report.updated if previous is not None else report.added).append(source)

    def documents(self) -> list[DocumentInfo]:
        """Return what the index holds of each document, by source."""
        return [info for _, info in sorted(self.store.sources().items())]


def upload_source(name: str) -> str:
    """Turn an upload's file name into its source: the base name, checked.

    Browsers send a bare name, but a client may send a path (``../x.md``, a Windows path):
    only its last part is kept: uploads never name a folder, and never a path outside.
    """
    base = PurePosixPath(name.replace("\\", "/")).name.strip()
    if not base or base in (".", ".."):
        raise DocumentError(f"{name!r}: an upload needs a file name")
    if len(base) > MAX_NAME_CHARS:
        raise DocumentError(f"{base[:40]}...: a file name of at most {MAX_NAME_CHARS} characters")
    if any(not character.isprintable() for character in base):
        raise DocumentError(f"{base!r}: a file name without control characters")
    accepted_kind(base)  # refused before the content is hashed or decoded
    return base
