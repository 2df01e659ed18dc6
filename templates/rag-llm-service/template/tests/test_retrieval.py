"""Retrieval: the best passages for a question, cut at the mode's relevance threshold."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from langchain_core.runnables import Runnable
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.ingest import Ingestor
from app.rag_config import RagConfig
from app.retrieval import Retriever
from app.vectorstore import ChunkStore


@pytest.fixture
def retriever(lexical_store: ChunkStore, rag_config: RagConfig, docs_folder: Path) -> Retriever:
    """Return a retriever over the test documents."""
    Ingestor(lexical_store, rag_config, max_bytes=100_000).ingest_folder(docs_folder)
    return Retriever(lexical_store, rag_config)


def test_the_answering_passage_comes_first(retriever: Retriever) -> None:
    """Each question finds its document's passage at rank one."""
    expected = {
        "How do I suspend the Flux kustomization?": ("rollback.md", "Rollback runbook > With Flux"),
        "Who gets paged when the error budget burns?": ("alerts.html", "Alerting"),
        "When is the on-call handover?": ("notes/oncall.txt", ""),
        "Why did the certificate renewal fail?": ("certificates.md", "Certificates"),
    }
    for question, (source, heading) in expected.items():
        best = retriever.retrieve(question)[0]
        assert (best.chunk.source, best.chunk.heading) == (source, heading), question


def test_hits_are_limited_to_top_k_or_the_k_asked(retriever: Retriever) -> None:
    """top_k of rag.yaml by default, k when given; best first."""
    question = "kubectl rollout flux alerts certificates handover"
    assert len(retriever.retrieve(question)) == retriever.config.top_k == 3
    hits = retriever.retrieve(question, k=10)
    assert len(hits) > 3
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_passages_below_the_threshold_are_dropped(
    lexical_store: ChunkStore, rag_config: RagConfig, docs_folder: Path
) -> None:
    """min_score of the mode in use is applied: nothing relevant, nothing returned."""
    Ingestor(lexical_store, rag_config, max_bytes=100_000).ingest_folder(docs_folder)
    question = "Flux release rollout, certificates and the on-call handover"
    loose = Retriever(lexical_store, rag_config).retrieve(question, k=10)
    assert len(loose) >= 3
    cut = loose[1].score  # keep only what scores at least the second hit
    strict = dataclasses.replace(rag_config, min_score={"lexical": cut, "model": 0.99})
    retriever = Retriever(lexical_store, strict)
    assert retriever.min_score == cut
    assert retriever.retrieve(question, k=10) == loose[:2]
    high = dataclasses.replace(rag_config, min_score={"lexical": 1.0, "model": 0.0})
    assert Retriever(lexical_store, high).retrieve(question) == []


def test_an_unrelated_question_finds_nothing(retriever: Retriever) -> None:
    """No shared word (or only stop words): no passage, so "I don't know"."""
    assert retriever.retrieve("What is the capital of Peru?") == []
    assert retriever.retrieve("what is it") == []


def test_the_runnable_retrieves_like_the_method(retriever: Retriever) -> None:
    """The langchain runnable (what generation chains on) gives the same hits."""
    runnable = retriever.as_runnable()
    assert isinstance(runnable, Runnable)
    question = "How do I suspend the Flux kustomization?"
    assert runnable.invoke(question) == retriever.retrieve(question)
    assert runnable.batch([question, "handover"]) == [
        retriever.retrieve(question),
        retriever.retrieve("handover"),
    ]
    assert retriever.mode == "lexical"


def test_embedding_the_question_is_traced(
    retriever: Retriever, spans: InMemorySpanExporter
) -> None:
    """An ``embed`` span with the embedding mode, for the caller's ``retrieve`` span to hold."""
    retriever.retrieve("flux suspend")
    embeds = [span for span in spans.get_finished_spans() if span.name == "embed"]
    assert len(embeds) == 1
    assert embeds[0].attributes is not None
    assert embeds[0].attributes["rag.embedding"] == "lexical"
