"""Answering a question: retrieve the passages, then the LLM (or the extractive answerer).

The chain is langchain-core runnables: the retriever's runnable gives the passages above
the relevance threshold; none means "I don't know" and no LLM call. Otherwise the passages
are numbered into the prompt version's :class:`ChatPromptTemplate`, piped to the chat
model, and its message becomes an :class:`Answer` citing the passages it names. Without an
LLM the extractive answerer quotes the passages instead.

Each step is measured (``rag_retrieval_*``, ``llm_*``) and traced: a ``retrieve`` span and
a ``chat <model>`` client span with the GenAI semantic-convention attributes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Protocol, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, BaseMessageChunk
from langchain_core.runnables import Runnable
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import metrics
from .chunking import Hit
from .extractive import (
    I_DONT_KNOW,
    MODE_EXTRACTIVE,
    MODE_LLM,
    MODE_NONE,
    Answer,
    Citation,
    best_sentence,
    citation_of,
    extractive_answer,
)
from .llm import ChatModelFactory, LLMError, llm_error, response_model, text_of, usage_of
from .prompts import PromptRegistry, PromptVersion
from .settings import Settings

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
EXTRACTIVE_MODEL = "extractive"
_CITED = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


class PassageRetriever(Protocol):
    """What generation needs of the retriever: a runnable from a question to its hits."""

    def as_runnable(self) -> Runnable[str, list[Hit]]:
        """Return the retrieval as a langchain runnable."""
        ...


@dataclasses.dataclass(frozen=True)
class StreamEvent:
    """One event of a streamed answer: ``token`` (text), ``citations``, ``done``, ``error``."""

    kind: str
    text: str = ""
    answer: Answer | None = None
    field: str = "llm"  # of an error: what failed ("llm", or "retrieval": this service)


def numbered_passages(hits: Sequence[Hit]) -> str:
    """Write the passages as the prompt's context: ``[n] source > heading`` then the text."""
    blocks = []
    for number, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        where = f"{chunk.source} > {chunk.heading}" if chunk.heading else chunk.source
        blocks.append(f"[{number}] {where}\n{chunk.text.strip()}")
    return "\n\n".join(blocks)


def cited_numbers(text: str, passages: int) -> list[int]:
    """Return the passage numbers an answer cites (``[2]``, ``[1, 3]``), in order, once each."""
    found: dict[int, None] = {}
    for match in _CITED.finditer(text):
        for part in match.group(1).split(","):
            number = int(part)
            if 1 <= number <= passages:
                found[number] = None
    return list(found)


def llm_citations(question: str, text: str, hits: Sequence[Hit]) -> list[Citation]:
    """Cite the passages the answer names (all when it names none), each by its best sentence."""
    numbers = cited_numbers(text, len(hits)) or list(range(1, len(hits) + 1))
    return [
        citation_of(number, hits[number - 1], best_sentence(question, hits[number - 1].chunk.text))
        for number in sorted(numbers)
    ]


class Generator:
    """Answers questions with the retriever, the prompts and a chat model (or none)."""

    def __init__(
        self,
        settings: Settings,
        retriever: PassageRetriever,
        prompts: PromptRegistry,
        prompt_name: str,
        default_label: str,
        embedding: str,
        chat_models: ChatModelFactory | None,
    ) -> None:
        self.settings = settings
        self.prompts = prompts
        self.prompt_name = prompt_name
        self.default_label = default_label
        self.embedding = embedding
        self.embedding_mode = settings.embedding_mode
        self._retrieval = retriever.as_runnable()
        self._chat_models = chat_models
        self._models: dict[tuple[str, int], BaseChatModel] = {}

    async def aclose(self) -> None:
        """Close what the chat models hold open (the LLM client's connections)."""
        closing = getattr(self._chat_models, "aclose", None)
        if closing is not None:
            await closing()

    @property
    def mode(self) -> str:
        """Return how questions with relevant passages are answered: ``llm`` or ``extractive``."""
        return MODE_LLM if self._chat_models is not None else MODE_EXTRACTIVE

    @property
    def model_name(self) -> str:
        """Return the model named in metrics and spans."""
        return self.settings.llm_model if self._chat_models is not None else EXTRACTIVE_MODEL

    def resolve(self, label: str | None) -> tuple[PromptVersion, str]:
        """Return the prompt version of ``label`` (default: rag.yaml's) and the label."""
        chosen = label or self.default_label
        return self.prompts.resolve(self.prompt_name, chosen), chosen

    async def retrieve(self, question: str) -> list[Hit]:
        """Find the question's passages above the threshold (measured and traced)."""
        started = time.perf_counter()
        with tracer.start_as_current_span("retrieve") as span:
            span.set_attribute("rag.embedding", self.embedding_mode)
            hits: list[Hit] = await self._retrieval.ainvoke(question)
            span.set_attribute("rag.hits", len(hits))
        metrics.RETRIEVAL_LATENCY.labels(self.embedding_mode).observe(time.perf_counter() - started)
        metrics.RETRIEVAL_HITS.labels(self.embedding_mode).observe(len(hits))
        return hits

    def _chain(self, prompt: PromptVersion) -> Runnable[dict[str, str], BaseMessage]:
        assert self._chat_models is not None
        key = (prompt.name, prompt.version)
        if key not in self._models:
            self._models[key] = self._chat_models(prompt)
        return prompt.chat_prompt() | self._models[key]

    def _finish(self, answer: Answer, prompt: PromptVersion, label: str) -> Answer:
        return dataclasses.replace(
            answer,
            prompt_name=prompt.name,
            prompt_version=prompt.version,
            prompt_label=label,
            embedding=self.embedding,
        )

    def _span(self, prompt: PromptVersion) -> Span:
        model = self.model_name
        return tracer.start_span(
            f"chat {model}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.system": "openai" if self._chat_models is not None else "extractive",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": model,
                "rag.prompt.name": prompt.name,
                "rag.prompt.version": prompt.version,
                **{
                    f"gen_ai.request.{key}": value
                    for key, value in prompt.model_parameters.items()
                    if key in ("temperature", "top_p", "max_tokens", "seed")
                },
            },
        )

    def _record(self, prompt: PromptVersion, span: Span, answer: Answer, elapsed: float) -> None:
        model = self.model_name
        metrics.LLM_REQUESTS.labels(model, str(prompt.version), "ok").inc()
        metrics.LLM_LATENCY.labels(model).observe(elapsed)
        span.set_attribute("gen_ai.response.model", answer.model or model)
        if answer.mode == MODE_LLM:
            usage = answer.usage
            metrics.LLM_TOKENS.labels("prompt", model).inc(usage["input_tokens"])
            metrics.LLM_TOKENS.labels("completion", model).inc(usage["output_tokens"])
            span.set_attribute("gen_ai.usage.input_tokens", usage["input_tokens"])
            span.set_attribute("gen_ai.usage.output_tokens", usage["output_tokens"])
            span.set_attribute("rag.usage.estimated", bool(usage["estimated"]))
        span.end()

    def _failed(self, prompt: PromptVersion, span: Span, error: BaseException) -> LLMError:
        failure = llm_error(error, self.settings)
        metrics.LLM_REQUESTS.labels(self.model_name, str(prompt.version), "error").inc()
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, failure.reason))
        span.set_attribute("error.type", type(error).__name__)
        span.end()
        logger.warning(
            "the LLM failed",
            extra={"reason": failure.reason, "model": self.model_name, "error": repr(error)},
        )
        return failure

    def _inputs(self, question: str, hits: Sequence[Hit]) -> dict[str, str]:
        return {"context": numbered_passages(hits), "question": question}

    def _llm_answer(
        self,
        prompt: PromptVersion,
        message: BaseMessage | None,
        inputs: dict[str, str],
        hits: Sequence[Hit],
    ) -> Answer:
        text = text_of(message).strip()
        if not text:
            raise LLMError("the LLM endpoint answered with no text")
        return Answer(
            text=text,
            mode=MODE_LLM,
            citations=llm_citations(inputs["question"], text, hits),
            usage=usage_of(message, prompt.template.format(**inputs), text),
            model=response_model(message, self.settings.llm_model),
        )

    def _extractive(self, question: str, hits: Sequence[Hit]) -> Answer:
        answer = extractive_answer(question, hits)
        return dataclasses.replace(answer, model=EXTRACTIVE_MODEL)

    async def answer(self, question: str, prompt: PromptVersion, label: str) -> Answer:
        """Answer in one piece; :class:`LLMError` when the LLM endpoint fails."""
        hits = await self.retrieve(question)
        if not hits:
            return self._finish(Answer(I_DONT_KNOW, MODE_NONE, []), prompt, label)
        span = self._span(prompt)
        started = time.perf_counter()
        try:
            if self._chat_models is None:
                answer = self._extractive(question, hits)
            else:
                inputs = self._inputs(question, hits)
                message = await self._chain(prompt).ainvoke(inputs)
                answer = self._llm_answer(prompt, message, inputs, hits)
        except asyncio.CancelledError:
            span.end()
            raise
        except Exception as error:
            raise self._failed(prompt, span, error) from error
        self._record(prompt, span, answer, time.perf_counter() - started)
        return self._finish(answer, prompt, label)

    async def stream(
        self, question: str, prompt: PromptVersion, label: str
    ) -> AsyncIterator[StreamEvent]:
        """Answer as it is generated: tokens, then the citations, then ``done``; or ``error``."""
        try:
            hits = await self.retrieve(question)
        except Exception as error:  # a broken index is this service's fault, not the caller's
            logger.exception("retrieval failed")
            yield StreamEvent(
                "error", f"retrieval failed: {type(error).__name__}", field="retrieval"
            )
            return
        if not hits:
            answer = self._finish(Answer(I_DONT_KNOW, MODE_NONE, []), prompt, label)
            yield StreamEvent("token", answer.text)
            yield StreamEvent("citations", answer=answer)
            yield StreamEvent("done", answer=answer)
            return
        span = self._span(prompt)
        started = time.perf_counter()
        if self._chat_models is None:
            answer = self._extractive(question, hits)
            self._record(prompt, span, answer, time.perf_counter() - started)
            answer = self._finish(answer, prompt, label)
            for line in answer.text.splitlines(keepends=True):
                yield StreamEvent("token", line)
        else:
            message: BaseMessageChunk | None = None
            inputs = self._inputs(question, hits)
            first = True
            try:
                async for piece in self._chain(prompt).astream(inputs):
                    chunk = cast(BaseMessageChunk, piece)  # what a chat model streams
                    text = text_of(chunk)
                    if first and text:
                        first = False
                        metrics.LLM_TIME_TO_FIRST_TOKEN.labels(self.model_name).observe(
                            time.perf_counter() - started
                        )
                    message = chunk if message is None else message + chunk
                    if text:
                        yield StreamEvent("token", text)
                answer = self._llm_answer(prompt, message, inputs, hits)
            except (asyncio.CancelledError, GeneratorExit):
                span.end()  # the caller went away: neither an answer nor the LLM's failure
                raise
            except Exception as error:
                yield StreamEvent("error", self._failed(prompt, span, error).reason)
                return
            self._record(prompt, span, answer, time.perf_counter() - started)
            answer = self._finish(answer, prompt, label)
        yield StreamEvent("citations", answer=answer)
        yield StreamEvent("done", answer=answer)
