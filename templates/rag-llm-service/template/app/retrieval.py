"""Retrieval: a question's most similar chunks, above the mode's relevance threshold.

Below ``min_score`` (per embedding mode in ``rag.yaml``: lexical and model scores are on
different scales) a passage is not relevant, and with none left the answer is "I don't
know". The question's embedding is traced as an ``embed`` span (inside the caller's
``retrieve`` span).
"""

from __future__ import annotations

from langchain_core.runnables import Runnable, RunnableLambda
from opentelemetry import trace

from .chunking import Hit
from .rag_config import RagConfig
from .vectorstore import ChunkStore

tracer = trace.get_tracer(__name__)


class Retriever:
    """Embeds a question, searches the store and keeps the hits above the threshold."""

    def __init__(self, store: ChunkStore, config: RagConfig) -> None:
        self.store = store
        self.config = config
        self.embedder = store.embedder

    @property
    def mode(self) -> str:
        """Return the embedding mode ("lexical" or "model")."""
        return self.embedder.mode

    @property
    def min_score(self) -> float:
        """Return the relevance threshold of the embedding mode in use."""
        return self.config.min_score[self.embedder.mode]

    def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        """Return up to ``k`` (default ``top_k``) relevant hits for a question, best first."""
        limit = self.config.top_k if k is None else k
        with tracer.start_as_current_span("embed") as span:
            span.set_attribute("rag.embedding", self.embedder.mode)
            span.set_attribute("gen_ai.operation.name", "embeddings")
            query = self.embedder.embed_query(question)
        threshold = self.min_score
        return [hit for hit in self.store.search(query, limit) if hit.score >= threshold]

    def as_runnable(self) -> Runnable[str, list[Hit]]:
        """Return :meth:`retrieve` (with ``top_k``) as a langchain runnable."""
        return RunnableLambda(self._retrieve_top_k, name="retrieve")

    def _retrieve_top_k(self, question: str) -> list[Hit]:
        return self.retrieve(question)
