"""The page: ask a question, watch the answer arrive with its citations.

``GET /`` shows the form, how questions are answered (an LLM, or the extractive answerer)
and the embedding in use. Submitting it with htmx fetches ``GET /ask`` (a fragment that
opens ``GET /ask/stream`` with htmx's SSE extension: ``token`` events append to the answer,
then ``citations``, then ``done`` with the mode, prompt and usage, which closes the
stream). Without JavaScript the same form loads ``GET /ask`` as a whole page answered in
one piece. A bad question is a 422 naming it, never a 5xx; the stream itself always
answers 200 (an EventSource retries anything else) and reports problems as ``error``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import escape
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent

from .errors import ApiError, field_name
from .extractive import Answer
from .llm import LLMError
from .prompts import PromptVersion, UnknownPromptLabelError
from .runtime import Runtime, RuntimeDep
from .schemas import MAX_QUESTION_CHARS, AskParams
from .settings import VERSION

HERE = Path(__file__).parent
MAX_DOCUMENTS_LISTED = 200
router = APIRouter()
templates = Jinja2Templates(directory=HERE / "templates")


def _checked(
    runtime: Runtime, question: str, label: str | None
) -> tuple[AskParams, PromptVersion, str]:
    """Validate the form; raise :class:`ApiError` naming the first field at fault."""
    try:
        params = AskParams(question=question, prompt_label=label)
    except ValidationError as error:
        first = error.errors()[0]
        raise ApiError(field_name(tuple(first["loc"])), str(first["msg"])) from None
    try:
        prompt, chosen = runtime.generator.resolve(params.prompt_label)
    except UnknownPromptLabelError as error:
        raise ApiError("prompt_label", str(error)) from None
    return params, prompt, chosen


def _context(runtime: Runtime, **extra: Any) -> dict[str, Any]:
    settings = runtime.settings
    labels = runtime.prompts.labels().get(runtime.rag.prompt_name, {})
    return {
        "settings": settings,
        "version": VERSION,
        "mode": runtime.generator.mode,
        "model": runtime.generator.model_name,
        "embedding": runtime.embedder.description,
        "labels": sorted(labels.items()),
        "default_label": runtime.rag.prompt_label,
        "prompt_name": runtime.rag.prompt_name,
        "max_question": MAX_QUESTION_CHARS,
        "ready": runtime.ready.is_set(),
        "question": "",
        "label": runtime.rag.prompt_label,
        "answer": None,
        "errors": {},
        **extra,
    }


async def _documents(runtime: Runtime) -> dict[str, Any]:
    found = await asyncio.to_thread(runtime.ingestor.documents)
    chunks = sum(info.chunks for info in found)
    return {
        "documents": found[:MAX_DOCUMENTS_LISTED],
        "documents_total": len(found),
        "chunks": chunks,
    }


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """Render the page: the form, how answers are made, the documents indexed."""
    context = _context(runtime, **await _documents(runtime))
    return templates.TemplateResponse(request, "index.html", context)


@router.get("/ask", response_class=HTMLResponse)
async def ask(
    request: Request, runtime: RuntimeDep, question: str = "", prompt_label: str | None = None
) -> HTMLResponse:
    """For htmx, the fragment that streams the answer; otherwise the page with the answer."""
    htmx = request.headers.get("HX-Request") == "true"
    context = _context(runtime, question=question, label=prompt_label or runtime.rag.prompt_label)
    status = 200
    try:
        params, prompt, label = _checked(runtime, question, prompt_label)
    except ApiError as error:
        context["errors"] = {error.field: error.message}
        status = 422
    else:
        if htmx:
            query = urlencode({"question": params.question, "prompt_label": label})
            context |= {"stream_url": f"/ask/stream?{query}", "question": params.question}
        else:
            try:
                context["answer"] = await runtime.generator.answer(params.question, prompt, label)
            except LLMError as error:
                context["errors"] = {"llm": error.reason}
                status = 502
    if htmx:
        return templates.TemplateResponse(request, "_answer.html", context, status_code=status)
    context |= await _documents(runtime)
    return templates.TemplateResponse(request, "index.html", context, status_code=status)


def _fragment(name: str, **context: Any) -> str:
    return templates.get_template(name).render(**context)


async def page_events(
    runtime: Runtime, question: str, prompt_label: str | None
) -> AsyncIterator[ServerSentEvent]:
    """Yield the answer's events as HTML fragments for the page; always end with ``done``."""
    try:
        params, prompt, label = _checked(runtime, question, prompt_label)
    except ApiError as error:
        message = f"{error.field}: {error.message}"
        yield ServerSentEvent(_fragment("_error.html", message=message), event="error")
        yield ServerSentEvent(_fragment("_meta.html", answer=None), event="done")
        return
    answer: Answer | None = None
    async for event in runtime.generator.stream(params.question, prompt, label):
        if event.kind == "token":
            yield ServerSentEvent(f"<span>{escape(event.text)}</span>", event="token")
        elif event.kind == "citations":
            html = _fragment("_citations.html", answer=event.answer)
            yield ServerSentEvent(html, event="citations")
        elif event.kind == "error":
            yield ServerSentEvent(_fragment("_error.html", message=event.text), event="error")
        else:
            answer = event.answer
    yield ServerSentEvent(_fragment("_meta.html", answer=answer), event="done")


@router.get("/ask/stream")
async def ask_stream(
    runtime: RuntimeDep, question: str = "", prompt_label: str | None = None
) -> EventSourceResponse:
    """Stream the answer to the page (HTML fragments as server-sent events)."""
    return EventSourceResponse(page_events(runtime, question, prompt_label), ping=15)
