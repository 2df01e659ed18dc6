"""The JSON API: ingest documents, list them, ask questions (whole or streamed), list prompts.

Every refusal is one JSON shape naming the field (:mod:`.errors`): an empty or too long
``question``, an unknown ``prompt_label``, an upload ``files[i]`` that cannot be indexed
(then none of the upload is), a folder ``path`` outside the documents or data folder. A
failed LLM call is a 502 naming ``llm`` with the reason (a streamed answer sends an
``error`` event instead: its status was sent with the first byte).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from .documents import DocumentError, read_document
from .errors import ApiError
from .extractive import Answer
from .generation import StreamEvent
from .ingest import IngestError, upload_source
from .llm import LLMError
from .prompts import PromptVersion, UnknownPromptLabelError
from .runtime import Runtime, RuntimeDep
from .schemas import (
    MAX_UPLOAD_FILES,
    AskParams,
    AskRequest,
    IngestFolderRequest,
    answer_json,
    plain,
)
from .settings import VERSION

router = APIRouter()
ENDPOINTS = [
    "POST /api/ingest",
    "POST /api/ingest/folder",
    "GET /api/documents",
    "POST /api/ask",
    "GET /api/ask/stream",
    "GET /api/prompts",
    "GET /",
]


def resolve_prompt(runtime: Runtime, label: str | None) -> tuple[PromptVersion, str]:
    """Return the prompt version of ``label`` (rag.yaml's by default), or a 422 naming it."""
    try:
        return runtime.generator.resolve(label)
    except UnknownPromptLabelError as error:
        raise ApiError("prompt_label", str(error)) from None


def stream_events(events: AsyncIterator[StreamEvent]) -> AsyncIterator[ServerSentEvent]:
    """Turn an answer's events into server-sent events with JSON data."""

    async def encoded() -> AsyncIterator[ServerSentEvent]:
        async for event in events:
            data: dict[str, Any]
            if event.kind == "token":
                data = {"text": event.text}
            elif event.kind == "error":
                data = {"field": event.field, "message": event.text}
            elif event.kind == "citations":
                assert event.answer is not None
                data = {"citations": answer_json(event.answer)["citations"]}
            else:
                assert event.answer is not None
                data = answer_json(event.answer)
            yield ServerSentEvent(json.dumps(data, ensure_ascii=False), event=event.kind)

    return encoded()


@router.post("/api/ask")
async def ask(request: AskRequest, runtime: RuntimeDep) -> JSONResponse:
    """Answer a question with numbered citations, the prompt version and the token usage."""
    prompt, label = resolve_prompt(runtime, request.prompt_label)
    try:
        answer: Answer = await runtime.generator.answer(request.question, prompt, label)
    except LLMError as error:
        raise ApiError("llm", error.reason, status=502) from error
    return JSONResponse(answer_json(answer))


@router.get("/api/ask/stream")
async def ask_stream(
    params: Annotated[AskParams, Query()], runtime: RuntimeDep
) -> EventSourceResponse:
    """Stream an answer as server-sent events: ``token``, ``citations``, ``done`` or ``error``."""
    prompt, label = resolve_prompt(runtime, params.prompt_label)
    events = runtime.generator.stream(params.question, prompt, label)
    return EventSourceResponse(stream_events(events), ping=15)


async def _uploads(files: list[UploadFile], max_bytes: int) -> list[tuple[str, bytes]]:
    """Read and check every upload; the first that cannot be indexed refuses them all."""
    if len(files) > MAX_UPLOAD_FILES:
        raise ApiError("files", f"at most {MAX_UPLOAD_FILES} files an upload, got {len(files)}")
    read: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for index, upload in enumerate(files):
        field = f"files[{index}]"
        data = await upload.read(max_bytes + 1)
        name = upload.filename or ""
        try:
            source = upload_source(name)
            if source in seen:
                raise DocumentError(f"{source}: given twice in one upload")
            # Decoding now (the ingestor decodes again) keeps a bad file from half an upload.
            read_document(source, data, max_bytes)
        except DocumentError as error:
            raise ApiError(field, str(error)) from None
        seen.add(source)
        read.append((name, data))
    return read


@router.post("/api/ingest")
async def ingest(
    files: Annotated[list[UploadFile], File(description="Markdown, text or HTML files.")],
    runtime: RuntimeDep,
) -> JSONResponse:
    """Index uploaded files (multipart ``files``); an unchanged one is left as it is."""
    uploads = await _uploads(files, runtime.settings.max_upload_bytes)
    async with runtime.ingesting:
        report = await asyncio.to_thread(runtime.ingestor.ingest_files, uploads)
    return JSONResponse({"report": plain(report), "chunks": runtime.store.count()})


def folder_to_ingest(runtime: Runtime, path: str | None) -> Path:
    """Return the folder asked for, refusing one outside the documents and data folders."""
    settings = runtime.settings
    if path is None or not path.strip():
        folder = settings.docs_dir
    else:
        asked = Path(path.strip())
        folder = asked if asked.is_absolute() else settings.docs_dir / asked
    resolved = folder.resolve()
    allowed = [settings.docs_dir.resolve(), settings.data_dir.resolve()]
    if not any(resolved.is_relative_to(root) for root in allowed):
        raise ApiError(
            "path",
            f"must be inside the documents folder ({settings.docs_dir}) or the data folder "
            f"({settings.data_dir})",
        )
    if not resolved.is_dir():
        raise ApiError("path", f"{path or settings.docs_dir}: no such folder")
    return resolved


@router.post("/api/ingest/folder")
async def ingest_folder(
    runtime: RuntimeDep, request: IngestFolderRequest | None = None
) -> JSONResponse:
    """Bring the index in step with a folder (default the documents folder, DOCS_DIR)."""
    folder = folder_to_ingest(runtime, request.path if request else None)
    async with runtime.ingesting:
        try:
            report = await asyncio.to_thread(runtime.ingestor.ingest_folder, folder)
        except IngestError as error:
            raise ApiError("path", str(error)) from None
    return JSONResponse({"report": plain(report), "chunks": runtime.store.count()})


@router.get("/api/documents")
async def documents(runtime: RuntimeDep) -> JSONResponse:
    """List the indexed documents: source, sha256, chunks, when and how ingested."""
    found = await asyncio.to_thread(runtime.ingestor.documents)
    return JSONResponse({"documents": plain(found), "chunks": runtime.store.count()})


def prompts_json(runtime: Runtime) -> dict[str, Any]:
    """Return every prompt version with the labels pointing at it, and the default."""
    labels = runtime.prompts.labels()
    versions = []
    for prompt in runtime.prompts.all():
        pointing = sorted(
            label
            for label, number in labels.get(prompt.name, {}).items()
            if number == prompt.version
        )
        versions.append(
            {
                "name": prompt.name,
                "version": prompt.version,
                "labels": pointing,
                "variables": list(prompt.variables),
                "model_parameters": prompt.model_parameters,
                "note": prompt.note,
                "template": prompt.template,
                "sha256": prompt.sha256,
            }
        )
    default = {"name": runtime.rag.prompt_name, "label": runtime.rag.prompt_label}
    return {"prompts": versions, "labels": labels, "default": default}


@router.get("/api/prompts")
async def prompts(runtime: RuntimeDep) -> JSONResponse:
    """List the prompt versions and their labels (the portal's Models page reads this)."""
    return JSONResponse(prompts_json(runtime))


@router.get("/api")  # "/" is left to the page
async def index(runtime: RuntimeDep) -> JSONResponse:
    """Say which service answers, how (LLM or extractive), with which embedding."""
    settings = runtime.settings
    generator = runtime.generator
    return JSONResponse(
        {
            "service": settings.service_name,
            "version": VERSION,
            "answers": generator.mode,
            "model": generator.model_name,
            "llm_base_url": settings.llm_base_url,
            "embedding": runtime.embedder.description,
            "prompt": {"name": runtime.rag.prompt_name, "label": runtime.rag.prompt_label},
            "chunks": runtime.store.count(),
            "endpoints": ENDPOINTS,
        }
    )
