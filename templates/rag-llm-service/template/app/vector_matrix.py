"""An in-process copy of the index's vectors, searched exactly in a millisecond or two.

Embedded Qdrant scores every point in Python on each search; this keeps the same vectors
as one matrix: for lexical vectors a feature-major sparse matrix, so a query touches only
the postings of its own words; for dense vectors a float32 array and one matrix-vector
product. All vectors are unit length, so the dot product is the cosine, as in Qdrant.

Rows are appended on writes and marked dead on deletes (or when a point is rewritten);
the search matrix is rebuilt lazily at the next search after a change, and dead rows are
dropped when they outnumber the live ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from qdrant_client import models
from scipy import sparse as sp

from .embeddings import LEXICAL_FEATURES

Matrix = sp.csr_matrix | npt.NDArray[np.float32]


class VectorMatrix:
    """Point ids, payloads and vectors, in insertion order, searchable by dot product."""

    def __init__(self, *, sparse: bool) -> None:
        self.sparse = sparse
        self._ids: list[str | None] = []  # None: a dead row
        self._payloads: list[dict[str, Any] | None] = []
        self._rows: dict[str, int] = {}
        self._by_source: dict[str, set[str]] = {}
        self._blocks: list[Matrix] = []
        self._searchable: Matrix | None = None
        self._dead: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)

    def __len__(self) -> int:
        return len(self._rows)

    def add_points(
        self,
        ids: Sequence[str],
        payloads: Sequence[dict[str, Any]],
        vectors: Sequence[models.SparseVector | list[float]],
    ) -> None:
        """Add points as Qdrant returns them (at start, from a scroll of the collection)."""
        if self.sparse:
            indptr = [0]
            indices: list[int] = []
            values: list[float] = []
            for vector in vectors:
                assert isinstance(vector, models.SparseVector)
                indices.extend(vector.indices)
                values.extend(vector.values)
                indptr.append(len(indices))
            matrix: Matrix = sp.csr_matrix(
                (np.asarray(values, dtype=np.float32), indices, indptr),
                shape=(len(vectors), LEXICAL_FEATURES),
            )
        else:
            matrix = np.asarray(vectors, dtype=np.float32)
        self.add(ids, payloads, matrix)

    def add(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]], matrix: Matrix) -> None:
        """Append rows; a row whose id is already present replaces the older row."""
        for point_id, payload in zip(ids, payloads, strict=True):
            self._forget(point_id)
            self._rows[point_id] = len(self._ids)
            self._ids.append(point_id)
            self._payloads.append(payload)
            self._by_source.setdefault(str(payload["source"]), set()).add(point_id)
        self._blocks.append(sp.csr_matrix(matrix, dtype=np.float32) if self.sparse else matrix)
        self._searchable = None

    def remove(self, ids: Sequence[str]) -> None:
        """Drop points by id (unknown ids are ignored)."""
        for point_id in ids:
            self._forget(point_id)
        self._searchable = None

    def _forget(self, point_id: str) -> None:
        row = self._rows.pop(point_id, None)
        if row is None:
            return
        payload = self._payloads[row]
        assert payload is not None
        source_ids = self._by_source.get(str(payload["source"]), set())
        source_ids.discard(point_id)
        if not source_ids:
            self._by_source.pop(str(payload["source"]), None)
        self._ids[row] = None
        self._payloads[row] = None

    def ids_of_source(self, source: str) -> list[str]:
        """Return the ids of a document's points."""
        return sorted(self._by_source.get(source, ()))

    def payloads(self) -> Iterator[dict[str, Any]]:
        """Yield the payload of every live point."""
        return (payload for payload in self._payloads if payload is not None)

    def search(self, query: Matrix, k: int) -> list[tuple[str, dict[str, Any], float]]:
        """Return (id, payload, score) of the ``k`` best rows for the query's first row."""
        if not self._rows:
            return []
        searchable = self._build()
        if self.sparse:
            row = sp.csr_matrix(query, dtype=np.float32)[0]
            if row.nnz == 0:
                return []
            # (1 x features) @ (features x rows): only the query's words' postings are read.
            product = sp.csr_matrix(row @ searchable)
            rows, scores = product.indices, product.data
            live = (scores > 0) & ~self._dead[rows]
            rows, scores = rows[live], scores[live]
        else:
            vector = np.asarray(query, dtype=np.float32).reshape(-1)
            assert isinstance(searchable, np.ndarray)
            scores = searchable @ vector
            rows = np.flatnonzero(~self._dead)
            scores = scores[rows]
        if len(rows) > k:
            best = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[best], scores[best]
        order = np.lexsort((rows, -scores))
        found = []
        for index in order:
            row = int(rows[index])
            point_id, payload = self._ids[row], self._payloads[row]
            assert point_id is not None
            assert payload is not None
            found.append((point_id, payload, float(scores[index])))
        return found

    def _build(self) -> Matrix:
        if self._searchable is not None:
            return self._searchable
        if len(self._ids) > 2 * len(self._rows) + 1000:
            self._compact()
        if self.sparse:
            stacked = sp.vstack(self._blocks, format="csr")
            self._blocks = [stacked]
            # Feature-major: row f lists the chunks containing hashed term f.
            self._searchable = sp.csr_matrix(stacked.T)
        else:
            dense = np.vstack(self._blocks).astype(np.float32, copy=False)
            self._blocks = [dense]
            self._searchable = dense
        self._dead = np.array([pid is None for pid in self._ids], dtype=bool)
        return self._searchable

    def _compact(self) -> None:
        keep = np.array([pid is not None for pid in self._ids], dtype=bool)
        whole = sp.vstack(self._blocks, format="csr") if self.sparse else np.vstack(self._blocks)
        self._blocks = [whole[keep]]
        self._ids = [pid for pid in self._ids if pid is not None]
        self._payloads = [payload for payload in self._payloads if payload is not None]
        self._rows = {pid: row for row, pid in enumerate(self._ids) if pid is not None}
