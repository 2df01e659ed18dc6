"""HTTP entry point: ``create_app`` assembles the service; ``app`` is what uvicorn serves.

The routes live beside it: :mod:`.pages` (the page and its stream), :mod:`.api`
(ingestion, documents, questions, prompts) and :mod:`.probes` (health, readiness,
metrics); :mod:`.observe` measures and traces every request. The lifespan reads
``rag.yaml`` and the prompts (a file with a problem stops the start, every problem listed
with its file, line and field), opens the index and starts ingesting the documents folder;
the service is ready once that is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import api, errors, pages, probes
from .embeddings import EmbeddingUnavailableError, embedder_for
from .generation import Generator
from .ingest import Ingestor
from .llm import ChatModelFactory, openai_chat_models
from .observe import observe
from .prompts import PromptError, PromptRegistry, UnknownPromptLabelError
from .rag_config import RagConfigError, load_rag_config
from .retrieval import Retriever
from .runtime import Runtime
from .schemas import plain
from .settings import VERSION, Settings
from .telemetry import configure_logging, configure_tracing
from .vectorstore import ChunkStore, StoreError

HERE = Path(__file__).parent
logger = logging.getLogger(__name__)
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _fastapi_options() -> dict[str, Any]:
    # FastAPI releases with built-in OpenTelemetry would start a second, unconnected server
    # span per request; this service's middleware owns request spans on every version.
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def build_runtime(settings: Settings, chat_models: ChatModelFactory | None) -> Runtime:
    """Read rag.yaml and the prompts, open the index: everything a start needs but ingesting.

    Raises :class:`RagConfigError` or :class:`PromptError` listing every problem, or
    :class:`EmbeddingUnavailableError` / :class:`StoreError` saying what is missing.
    """
    rag = load_rag_config(settings.rag_file)
    prompts = PromptRegistry.load(settings.prompts_dir)
    try:
        prompts.resolve(rag.prompt_name, rag.prompt_label)
    except UnknownPromptLabelError as error:
        raise PromptError([f"{settings.rag_file.name}: prompt: {error}"]) from None
    embedder = embedder_for(settings.embedding_mode)
    store = ChunkStore(settings, embedder)
    generator = Generator(
        settings,
        Retriever(store, rag),
        prompts,
        rag.prompt_name,
        rag.prompt_label,
        embedder.description,
        chat_models if chat_models is not None else openai_chat_models(settings),
    )
    ingestor = Ingestor(store, rag, settings.max_upload_bytes)
    return Runtime(settings, rag, prompts, embedder, store, ingestor, generator)


async def ingest_on_start(runtime: Runtime) -> None:
    """Ingest the documents folder (a file with a problem is logged, not fatal); then ready.

    If ingesting fails as a whole (the index cannot be written), the replica stays unready
    and its readiness says why; the other replicas keep serving.
    """
    settings = runtime.settings
    folder = settings.docs_dir
    try:
        if settings.ingest_on_start and folder.is_dir():
            async with runtime.ingesting:
                report = await asyncio.to_thread(runtime.ingestor.ingest_folder, folder)
            runtime.startup_report = plain(report)
            for error in report.errors:
                logger.warning("document not ingested", extra=error)
            counts = {key: len(getattr(report, key)) for key in ("added", "updated", "unchanged")}
            logger.info(
                "documents ingested",
                extra={
                    "folder": str(folder),
                    **counts,
                    "removed": report.removed,
                    "errors": len(report.errors),
                    "chunks": await asyncio.to_thread(runtime.store.count),
                },
            )
        elif settings.ingest_on_start:
            logger.warning("no documents folder to ingest", extra={"folder": str(folder)})
    except Exception as error:
        runtime.failure = f"ingesting {folder} failed: {type(error).__name__}: {error}"
        logger.exception("ingesting the documents failed", extra={"folder": str(folder)})
        return
    runtime.ready.set()


def lifespan_of(settings: Settings, chat_models: ChatModelFactory | None) -> Lifespan:
    """Return the lifespan: build the runtime, ingest in the background, close the index."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        configure_tracing(settings.service_name)
        try:
            runtime = await asyncio.to_thread(build_runtime, settings, chat_models)
        except (RagConfigError, PromptError) as error:
            # Refuse to start: the rollout stalls and the previous pods keep serving.
            logger.error("configuration refused", extra={"problems": error.problems})
            raise
        except (EmbeddingUnavailableError, StoreError) as error:
            logger.error("cannot start", extra={"reason": str(error)})
            raise
        app.state.runtime = runtime
        task = asyncio.create_task(ingest_on_start(runtime))
        logger.info(
            "started",
            extra={
                "answers": runtime.generator.mode,
                "model": runtime.generator.model_name,
                "embedding": runtime.embedder.description,
                "prompt": f"{runtime.rag.prompt_name}@{runtime.rag.prompt_label}",
                "chunks": runtime.store.count(),
            },
        )
        try:
            yield
        finally:
            app.state.runtime = None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await runtime.generator.aclose()
            runtime.store.close()

    return lifespan


def create_app(
    settings: Settings | None = None, *, chat_models: ChatModelFactory | None = None
) -> FastAPI:
    """Build the application; nothing is read or started until its lifespan begins.

    ``chat_models`` makes the chat model of a prompt version (tests pass fake ones); by
    default, an OpenAI-compatible client of ``LLM_BASE_URL``, or none (extractive answers).
    """
    settings = settings or Settings.from_env()
    app = FastAPI(
        title=settings.service_name,
        version=VERSION,
        lifespan=lifespan_of(settings, chat_models),
        **_fastapi_options(),
    )
    app.state.runtime = None
    app.middleware("http")(observe)
    errors.install(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (pages, api, probes):
        app.include_router(module.router)
    return app


app = create_app()
