"""What the routes share while the app runs: settings, the index, the prompts, the answerer."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

from fastapi import Depends, Request

from .embeddings import Embedder
from .generation import Generator
from .ingest import Ingestor
from .prompts import PromptRegistry
from .rag_config import RagConfig
from .settings import Settings
from .vectorstore import ChunkStore


@dataclasses.dataclass
class Runtime:
    """The started service: created by the lifespan, gone when it ends."""

    settings: Settings
    rag: RagConfig
    prompts: PromptRegistry
    embedder: Embedder
    store: ChunkStore
    ingestor: Ingestor
    generator: Generator
    # Set once the documents of DOCS_DIR are ingested (or found unchanged): ready.
    ready: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # Why the start's ingestion failed as a whole (the replica then stays unready).
    failure: str | None = None
    # The start's ingestion report, for the page and the logs.
    startup_report: dict[str, Any] | None = None
    # Ingesting writes the index: one at a time per replica, questions still answered.
    ingesting: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


def started(request: Request) -> Runtime:
    """Return the runtime of the started app (a FastAPI dependency of the routes)."""
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("the service is not started")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(started)]
