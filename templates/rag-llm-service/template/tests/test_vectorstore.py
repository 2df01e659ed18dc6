"""The chunk index on real embedded Qdrant: writes, deletes, persistence, both search paths."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from app.chunking import Chunk, chunk_id
from app.embeddings import MODEL_DIMENSIONS, LexicalEmbedder, Vectors
from app.settings import Settings
from app.vector_matrix import VectorMatrix
from app.vectorstore import ChunkStore, StoreError, collection_name

TEXTS = {
    "rollback.md": [
        "Suspend the kustomization with flux suspend and revert the commit.",
        "Undo the rollout with kubectl rollout undo deployment web.",
    ],
    "certs.md": ["cert-manager renews TLS certificates thirty days before expiry."],
    "oncall.txt": ["The on-call handover happens every Monday with a written note."],
}


def _chunks(source: str, texts: Sequence[str], sha: str = "v1") -> list[Chunk]:
    chunks, start = [], 0
    for text in texts:
        chunks.append(
            Chunk(
                chunk_id(source, start, text), source, "Head", text, start, start + len(text), sha
            )
        )
        start += len(text) + 2
    return chunks


def _fill(store: ChunkStore) -> None:
    for source, texts in TEXTS.items():
        chunks = _chunks(source, texts)
        store.upsert(chunks, store.embedder.embed_documents([c.text for c in chunks]))


def _ask(store: ChunkStore, question: str, k: int = 3) -> list[tuple[str, float]]:
    return [
        (hit.chunk.text, hit.score) for hit in store.search(store.embedder.embed_query(question), k)
    ]


class FakeDenseEmbedder:
    """Deterministic 384-d unit vectors from word hashes: a stand-in for the model."""

    mode = "model"
    description = "fake dense"

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Sum a fixed random vector per word, then normalise."""
        rows = np.zeros((len(texts), MODEL_DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big")
                rows[row] += np.random.default_rng(seed).standard_normal(MODEL_DIMENSIONS)
            rows[row] /= np.linalg.norm(rows[row]) or 1.0
        return Vectors(rows)

    def embed_query(self, text: str) -> Vectors:
        """Embed one text."""
        return self.embed_documents([text])


def test_search_returns_the_closest_chunk_with_all_its_fields(lexical_store: ChunkStore) -> None:
    """Hits come best first with cosine scores, and carry the chunk as written."""
    _fill(lexical_store)
    hits = lexical_store.search(lexical_store.embedder.embed_query("kubectl rollout undo"), 3)
    assert hits[0].chunk == _chunks("rollback.md", TEXTS["rollback.md"])[1]
    assert 0 < hits[0].score <= 1.0
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert lexical_store.count() == 4


def test_nothing_in_common_finds_nothing(lexical_store: ChunkStore) -> None:
    """An empty index, or a question sharing no word with it, gives no hits."""
    assert _ask(lexical_store, "kubectl") == []
    _fill(lexical_store)
    assert _ask(lexical_store, "zebra giraffe") == []
    assert _ask(lexical_store, "what is it") == []  # stop words only: an empty vector
    assert _ask(lexical_store, "kubectl", k=0) == []


@pytest.mark.parametrize(
    "embedder", [LexicalEmbedder(), FakeDenseEmbedder()], ids=["lexical", "dense"]
)
def test_the_in_process_search_ranks_as_qdrant_does(
    rag_settings: Settings, embedder: object
) -> None:
    """The in-process matrix and Qdrant's own query_points give the same hits and scores."""
    questions = ["flux suspend revert", "TLS certificates expiry", "handover note Monday", "web"]
    store = ChunkStore(rag_settings, embedder)  # type: ignore[arg-type]
    _fill(store)
    store.delete_source("certs.md")
    _fill(store)  # rewritten points must not be found twice
    here = {question: _ask(store, question, k=10) for question in questions}
    store.close()
    qdrant = ChunkStore(rag_settings, embedder, in_process_search=False)  # type: ignore[arg-type]
    try:
        for question in questions:
            theirs = _ask(qdrant, question, k=10)
            assert [text for text, _ in here[question]] == [text for text, _ in theirs]
            assert [score for _, score in here[question]] == pytest.approx(
                [s for _, s in theirs], abs=1e-5
            )
            assert here[question]
        assert qdrant.count() == 4
    finally:
        qdrant.close()


def test_the_index_survives_a_restart(rag_settings: Settings) -> None:
    """Closed and reopened, the store loads its chunks back and searches them alike."""
    store = ChunkStore(rag_settings, LexicalEmbedder())
    _fill(store)
    before = _ask(store, "flux suspend")
    sources_before = store.sources()
    store.close()
    reopened = ChunkStore(rag_settings, LexicalEmbedder())
    try:
        assert reopened.count() == 4
        assert _ask(reopened, "flux suspend") == before
        assert reopened.sources() == sources_before
    finally:
        reopened.close()


def test_one_store_per_data_folder(rag_settings: Settings) -> None:
    """A second store on the same folder is refused, naming it; after close() it opens."""
    store = ChunkStore(rag_settings, LexicalEmbedder())
    with pytest.raises(StoreError, match=r"qdrant is in use by another process"):
        ChunkStore(rag_settings, LexicalEmbedder())
    store.close()
    store.close()  # twice is harmless
    ChunkStore(rag_settings, LexicalEmbedder()).close()


def test_delete_source_removes_only_that_document(lexical_store: ChunkStore) -> None:
    """Its chunks go (and are counted); the others stay searchable."""
    _fill(lexical_store)
    assert lexical_store.delete_source("rollback.md") == 2
    assert lexical_store.delete_source("rollback.md") == 0
    assert _ask(lexical_store, "flux suspend kubectl") == []
    assert sorted(lexical_store.sources()) == ["certs.md", "oncall.txt"]
    assert lexical_store.count() == 2


def test_replace_source_leaves_only_the_new_version(lexical_store: ChunkStore) -> None:
    """An updated document's old chunks go once its new ones are written."""
    _fill(lexical_store)
    new = _chunks("rollback.md", ["Roll back with helm rollback instead."], sha="v2")
    removed = lexical_store.replace_source(
        "rollback.md", new, LexicalEmbedder().embed_documents([new[0].text]), "folder"
    )
    assert removed == 2
    assert _ask(lexical_store, "flux suspend kubectl") == []
    assert _ask(lexical_store, "helm rollback")[0][0] == new[0].text
    info = lexical_store.sources()["rollback.md"]
    assert (info.sha256, info.chunks, info.origin, info.kind) == ("v2", 1, "folder", "markdown")


def test_writing_a_chunk_again_replaces_it(lexical_store: ChunkStore) -> None:
    """Same id, new payload: still one point, found with the new text."""
    chunk = _chunks("a.md", ["first words here"])[0]
    embed = LexicalEmbedder().embed_documents
    lexical_store.upsert([chunk], embed([chunk.text]))
    changed = dataclasses.replace(chunk, text="second version entirely")
    lexical_store.upsert([changed], embed([changed.text]))
    assert lexical_store.count() == 1
    assert _ask(lexical_store, "first words") == []
    assert _ask(lexical_store, "second version")[0][0] == "second version entirely"


def test_sources_report_a_document_left_half_written(lexical_store: ChunkStore) -> None:
    """Chunks of two versions of one document: no digest, so the next ingestion redoes it."""
    embed = LexicalEmbedder().embed_documents
    old, new = _chunks("a.md", ["old text"], "v1"), _chunks("a.md", ["new text", "more"], "v2")
    lexical_store.upsert(old, embed(["old text"]))
    lexical_store.upsert(new, embed(["new text", "more"]))
    info = lexical_store.sources()["a.md"]
    assert (info.sha256, info.chunks) == ("", 3)


def test_mismatched_chunks_and_vectors_are_refused(lexical_store: ChunkStore) -> None:
    """A caller bug is caught before anything is written."""
    chunks = _chunks("a.md", ["one", "two"])
    with pytest.raises(ValueError, match="2 chunks but 1 vectors"):
        lexical_store.upsert(chunks, LexicalEmbedder().embed_documents(["one"]))
    assert lexical_store.count() == 0


def test_writes_larger_than_one_batch_are_all_stored(lexical_store: ChunkStore) -> None:
    """More points than one upsert request holds are written in several."""
    texts = [f"runbook step number{n} restarts pod{n}" for n in range(600)]
    chunks = _chunks("big.md", texts)
    lexical_store.upsert(chunks, LexicalEmbedder().embed_documents(texts))
    assert lexical_store.count() == 600
    assert _ask(lexical_store, "pod599")[0][0] == texts[599]


def test_the_matrix_compacts_dead_rows_and_keeps_answering() -> None:
    """Many rewrites leave dead rows; once they dominate they are dropped, results intact."""
    embedder = LexicalEmbedder()
    matrix = VectorMatrix(sparse=True)
    texts = [f"alpha{n} beta" for n in range(50)]
    payloads = [{"source": f"s{n}.md", "text": text} for n, text in enumerate(texts)]
    ids = [f"id{n}" for n in range(50)]
    for _ in range(60):  # 3,000 rows written, 50 alive
        matrix.add(ids, payloads, embedder.embed_documents(texts).matrix)
        matrix.search(embedder.embed_query("beta").matrix, 1)
    assert len(matrix) == 50
    assert len(matrix._ids) < 2 * 50 + 1000 + 50  # compacted
    found = matrix.search(embedder.embed_query("alpha7").matrix, 3)
    assert [(point_id, payload["text"]) for point_id, payload, _ in found] == [
        ("id7", "alpha7 beta")
    ]
    matrix.remove(["id7"])
    assert matrix.search(embedder.embed_query("alpha7").matrix, 3) == []
    assert matrix.ids_of_source("s7.md") == [] and matrix.ids_of_source("s8.md") == ["id8"]


def test_collections_are_named_by_service_and_mode() -> None:
    """Two modes never share a collection; odd characters are replaced."""
    assert collection_name("runbook-assistant", "lexical") == "runbook-assistant-lexical"
    assert collection_name("a b/c", "model") == "a-b-c-model"
