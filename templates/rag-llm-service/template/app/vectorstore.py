"""The chunk index: Qdrant is the store of record, embedded on disk or a server.

Each chunk is a Qdrant point (id = the chunk's id) whose payload holds the chunk's fields
and where its document came from; the vector is sparse ``lexical`` or dense ``dense``
depending on the embedding, in a collection named after the service and the mode (so
switching modes never mixes vectors of two kinds).

With ``QDRANT_URL`` searches are Qdrant's own (``query_points``). In embedded mode
qdrant-client scores every point in Python on each search (measured: 46 ms over 10,000
dense points, 2 s over 10,000 sparse ones), so the store keeps the vectors in an
in-process matrix (:mod:`app.vector_matrix`), loaded from the collection at start and
updated with every write, and searches that instead. Embedded mode locks its folder: one
store per data folder; :meth:`ChunkStore.close` releases it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models

from .chunking import Chunk, Hit
from .documents import kind_of
from .embeddings import MODEL_DIMENSIONS, Embedder, Vectors
from .settings import Settings
from .vector_matrix import VectorMatrix

# Points per upsert request: fewer round trips to a server; in embedded mode batches of
# this size measured ~900 points/s against ~600 one by one.
UPSERT_BATCH = 256
_SCROLL_PAGE = 1024
_VECTOR_NAMES = {"lexical": "lexical", "model": "dense"}


class StoreError(RuntimeError):
    """The index cannot be opened or reached; the message says which and why."""


@dataclass(frozen=True)
class DocumentInfo:
    """What the index holds of one document."""

    source: str
    sha256: str
    chunks: int
    ingested_at: str
    kind: str
    origin: str  # "folder" (the docs folder) or "upload"


def collection_name(service_name: str, mode: str) -> str:
    """Return the collection of a service and embedding mode (Qdrant-safe characters)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", service_name).strip("-") or "rag"
    return f"{slug}-{mode}"


def chunk_payload(chunk: Chunk, origin: str, ingested_at: str) -> dict[str, Any]:
    """Return the payload stored with a chunk's point."""
    return {
        "source": chunk.source,
        "heading": chunk.heading,
        "text": chunk.text,
        "start": chunk.start,
        "end": chunk.end,
        "document_sha256": chunk.document_sha256,
        "kind": kind_of(chunk.source) or "",
        "origin": origin,
        "ingested_at": ingested_at,
    }


def chunk_from_payload(point_id: str, payload: dict[str, Any]) -> Chunk:
    """Rebuild a chunk from its point."""
    return Chunk(
        id=point_id,
        source=str(payload["source"]),
        heading=str(payload.get("heading", "")),
        text=str(payload["text"]),
        start=int(payload["start"]),
        end=int(payload["end"]),
        document_sha256=str(payload["document_sha256"]),
    )


class ChunkStore:
    """Chunks and their vectors in Qdrant, searchable by similarity to a query vector."""

    def __init__(
        self, settings: Settings, embedder: Embedder, *, in_process_search: bool | None = None
    ) -> None:
        """Open (creating if needed) the collection of ``embedder``'s mode.

        ``in_process_search`` defaults to True in embedded mode and False with a server;
        tests turn it off in embedded mode to run the ``query_points`` path.
        """
        self.embedder = embedder
        self.mode = embedder.mode
        self.vector_name = _VECTOR_NAMES[embedder.mode]
        self.collection = collection_name(settings.service_name, embedder.mode)
        self.location = settings.qdrant_url or str(settings.data_dir / "qdrant")
        self._lock = threading.RLock()
        self._client = _connect(settings)
        try:
            self._ensure_collection()
            search_here = (
                not settings.qdrant_url if in_process_search is None else in_process_search
            )
            self._matrix = self._load_matrix() if search_here else None
        except Exception as error:
            self._client.close()
            if isinstance(error, StoreError):
                raise
            raise StoreError(f"Qdrant at {self.location}: {error}") from error

    def _ensure_collection(self) -> None:
        if self._client.collection_exists(self.collection):
            return
        if self.mode == "lexical":
            self._client.create_collection(
                self.collection,
                vectors_config={},
                sparse_vectors_config={self.vector_name: models.SparseVectorParams()},
            )
        else:
            self._client.create_collection(
                self.collection,
                vectors_config={
                    self.vector_name: models.VectorParams(
                        size=MODEL_DIMENSIONS, distance=models.Distance.COSINE
                    )
                },
            )

    def _load_matrix(self) -> VectorMatrix:
        matrix = VectorMatrix(sparse=self.mode == "lexical")
        offset: Any = None
        while True:
            records, offset = self._client.scroll(
                self.collection,
                limit=_SCROLL_PAGE,
                offset=offset,
                with_payload=True,
                with_vectors=[self.vector_name],
            )
            if records:
                vectors = [_vector_of(record.vector, self.vector_name) for record in records]
                matrix.add_points(
                    [str(record.id) for record in records],
                    [dict(record.payload or {}) for record in records],
                    vectors,
                )
            if offset is None:
                return matrix

    def upsert(self, chunks: Sequence[Chunk], vectors: Vectors, origin: str = "folder") -> None:
        """Write chunks (row ``i`` of ``vectors`` is chunk ``i``'s), replacing same-id ones."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        if not chunks:
            return
        ingested_at = datetime.now(UTC).isoformat(timespec="seconds")
        payloads = [chunk_payload(chunk, origin, ingested_at) for chunk in chunks]
        with self._lock:
            for begin in range(0, len(chunks), UPSERT_BATCH):
                points = [
                    models.PointStruct(
                        id=chunks[index].id,
                        vector={self.vector_name: self._point_vector(vectors, index)},
                        payload=payloads[index],
                    )
                    for index in range(begin, min(begin + UPSERT_BATCH, len(chunks)))
                ]
                self._client.upsert(self.collection, points=points, wait=True)
            if self._matrix is not None:
                self._matrix.add([chunk.id for chunk in chunks], payloads, vectors.matrix)

    def _point_vector(self, vectors: Vectors, index: int) -> models.SparseVector | list[float]:
        if vectors.is_sparse:
            indices, values = vectors.sparse_row(index)
            return models.SparseVector(indices=indices, values=values)
        return vectors.dense_row(index)

    def replace_source(
        self, source: str, chunks: Sequence[Chunk], vectors: Vectors, origin: str
    ) -> int:
        """Make ``chunks`` the whole of ``source``: write them, then drop the source's others.

        New chunks are written before old ones go, so a failure part-way leaves the
        document searchable (old and new chunks both) rather than missing. Returns how many
        old chunks were removed.
        """
        with self._lock:
            self.upsert(chunks, vectors, origin)
            keep = {chunk.id for chunk in chunks}
            return self._delete(source, keep)

    def delete_source(self, source: str) -> int:
        """Remove every chunk of a document; return how many there were."""
        with self._lock:
            return self._delete(source, set())

    def _delete(self, source: str, keep: set[str]) -> int:
        if self._matrix is not None:
            doomed = [pid for pid in self._matrix.ids_of_source(source) if pid not in keep]
            if doomed:
                self._client.delete(
                    self.collection, points_selector=models.PointIdsList(points=doomed), wait=True
                )
                self._matrix.remove(doomed)
            return len(doomed)
        condition = models.Filter(
            must=[models.FieldCondition(key="source", match=models.MatchValue(value=source))],
            must_not=[models.HasIdCondition(has_id=sorted(keep))] if keep else None,
        )
        count = self._client.count(self.collection, count_filter=condition, exact=True).count
        if count:
            self._client.delete(
                self.collection, points_selector=models.FilterSelector(filter=condition), wait=True
            )
        return count

    def sources(self) -> dict[str, DocumentInfo]:
        """Return what the index holds of each document, by source."""
        with self._lock:
            if self._matrix is not None:
                payloads = list(self._matrix.payloads())
            else:
                payloads = self._scroll_payloads()
        found: dict[str, DocumentInfo] = {}
        for payload in payloads:
            source = str(payload["source"])
            known = found.get(source)
            sha = str(payload["document_sha256"])
            if known is not None and known.sha256 != sha:
                # Left over from a write cut short: report no digest so the file is re-read.
                sha = ""
            stamp = str(payload.get("ingested_at", ""))
            found[source] = DocumentInfo(
                source=source,
                sha256=sha,
                chunks=(known.chunks if known else 0) + 1,
                ingested_at=max(stamp, known.ingested_at) if known else stamp,
                kind=str(payload.get("kind", "")),
                origin=str(payload.get("origin", "folder")),
            )
        return found

    def _scroll_payloads(self) -> list[dict[str, Any]]:
        fields = ["source", "document_sha256", "ingested_at", "kind", "origin"]
        payloads: list[dict[str, Any]] = []
        offset: Any = None
        while True:
            records, offset = self._client.scroll(
                self.collection, limit=_SCROLL_PAGE, offset=offset, with_payload=fields
            )
            payloads.extend(dict(record.payload or {}) for record in records)
            if offset is None:
                return payloads

    def search(self, query: Vectors, k: int) -> list[Hit]:
        """Return the ``k`` chunks most similar to the query's first row, best first."""
        if k < 1:
            return []
        with self._lock:
            if self._matrix is not None:
                return [
                    Hit(chunk_from_payload(pid, payload), score)
                    for pid, payload, score in self._matrix.search(query.matrix, k)
                ]
            vector = self._point_vector(query, 0)
            if isinstance(vector, models.SparseVector) and not vector.indices:
                return []  # no known word: nothing can be similar
            response = self._client.query_points(
                self.collection, query=vector, using=self.vector_name, limit=k, with_payload=True
            )
        return [
            Hit(chunk_from_payload(str(point.id), dict(point.payload or {})), float(point.score))
            for point in response.points
        ]

    def count(self) -> int:
        """Return how many chunks the index holds."""
        with self._lock:
            if self._matrix is not None:
                return len(self._matrix)
            return int(self._client.count(self.collection, exact=True).count)

    def close(self) -> None:
        """Release the client (and in embedded mode the folder's lock); safe to repeat."""
        with self._lock:
            self._client.close()


def _connect(settings: Settings) -> QdrantClient:
    if settings.qdrant_url:
        try:
            return QdrantClient(
                url=settings.qdrant_url, api_key=settings.qdrant_api_key or None, timeout=10
            )
        except Exception as error:
            raise StoreError(f"Qdrant at {settings.qdrant_url}: {error}") from error
    folder = settings.data_dir / "qdrant"
    in_use = StoreError(
        f"the index folder {folder} is in use by another process (one service per data "
        "folder): stop it or set DATA_DIR to another folder"
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not _lock_is_free(folder / ".lock"):
            # Checked first: qdrant-client, refused the lock, leaves its lock file open.
            raise in_use
        return QdrantClient(path=str(folder))
    except RuntimeError as error:
        if "already accessed" in str(error):
            raise in_use from error
        raise StoreError(f"the index folder {folder} cannot be opened: {error}") from error
    except OSError as error:
        raise StoreError(f"the index folder {folder} cannot be used: {error}") from error


def _lock_is_free(path: Path) -> bool:
    """Tell whether embedded Qdrant's lock file is free (the lock it takes, taken and let go)."""
    if not path.exists():
        return True
    import portalocker  # qdrant-client's own dependency, and the lock it uses

    with path.open("r+") as handle:
        try:
            portalocker.lock(
                handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
            )
        except portalocker.exceptions.LockException:
            return False
        portalocker.unlock(handle)
    return True


def _vector_of(vector: Any, name: str) -> models.SparseVector | list[float]:
    if isinstance(vector, dict) and name in vector:
        value = vector[name]
        if isinstance(value, models.SparseVector):
            return value
        return [float(x) for x in value]
    raise StoreError(f"a point has no {name!r} vector: the collection was written by another setup")
