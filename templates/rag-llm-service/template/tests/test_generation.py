"""Generation with langchain-core's fake chat models: answers, streams, failures, telemetry."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
    ParrotFakeChatModel,
)
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from app.chunking import Chunk, Hit
from app.generation import Generator, StreamEvent, cited_numbers, numbered_passages
from app.llm import LLMError
from app.prompts import PromptRegistry, PromptVersion
from app.settings import Settings

from .conftest import TEST_PROMPTS, write_docs

PASSAGES = [
    ("flux.md", "Rollback > With Flux", "Suspend Flux with flux suspend, then revert the commit."),
    ("kubectl.md", "", "Undo the rollout with kubectl rollout undo."),
]
Factory = Callable[[PromptVersion], BaseChatModel]


class FakeRetriever:
    """Answers every question with the same hits, and records the questions."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.questions: list[str] = []

    def as_runnable(self) -> Runnable[str, list[Hit]]:
        """Return the retrieval as a runnable, as the real retriever does."""

        def retrieve(question: str) -> list[Hit]:
            self.questions.append(question)
            return list(self.hits)

        return RunnableLambda(retrieve)


class FakeTimeoutChatModel(GenericFakeChatModel):
    """A chat model whose endpoint never answers in time."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        raise openai.APITimeoutError(request=httpx.Request("POST", "http://llm.test"))


def hits_of(passages: list[tuple[str, str, str]]) -> list[Hit]:
    """Return hits on chunks of (source, heading, text), scored in order."""
    return [
        Hit(Chunk(source, source, heading, text, 0, len(text), "0" * 64), 0.9 - 0.1 * rank)
        for rank, (source, heading, text) in enumerate(passages)
    ]


def sample(name: str, **labels: str) -> float:
    """Return a metric's current value (0 before it is first counted)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def prompts(tmp_path: Path) -> PromptRegistry:
    """Return the test prompts: qa v1 (production) and v2 (staging)."""
    return PromptRegistry.load(write_docs(tmp_path / "prompts", TEST_PROMPTS))


def generator(
    settings: Settings,
    prompts: PromptRegistry,
    factory: Factory | None,
    passages: list[tuple[str, str, str]] = PASSAGES,
) -> Generator:
    """Return a generator over fixed hits with the given chat models (None: extractive)."""
    settings = dataclasses.replace(settings, llm_model="fake-model")
    return Generator(
        settings,
        FakeRetriever(hits_of(passages)),
        prompts,
        "qa",
        "production",
        "lexical (t)",
        factory,
    )


def ask(gen: Generator, label: str | None = None, question: str = "How do I roll back?") -> Any:
    """Answer in one piece."""
    prompt, chosen = gen.resolve(label)
    return asyncio.run(gen.answer(question, prompt, chosen))


def stream(gen: Generator, label: str | None = None) -> list[StreamEvent]:
    """Collect a streamed answer's events."""
    prompt, chosen = gen.resolve(label)

    async def collect() -> list[StreamEvent]:
        return [event async for event in gen.stream("How do I roll back?", prompt, chosen)]

    return asyncio.run(collect())


def test_the_llm_answer_cites_the_passages_it_names_and_records_the_prompt(
    rag_settings: Settings, prompts: PromptRegistry
) -> None:
    """Usage from the model's metadata, citations of the numbers used, prompt name and version."""
    message = AIMessage(
        "Suspend Flux first [1].",
        usage_metadata={"input_tokens": 210, "output_tokens": 7, "total_tokens": 217},
        response_metadata={"model_name": "fake-model-2025"},
    )
    answer = ask(
        generator(rag_settings, prompts, lambda p: GenericFakeChatModel(messages=iter([message])))
    )
    assert (answer.text, answer.mode, answer.model) == (
        "Suspend Flux first [1].",
        "llm",
        "fake-model-2025",
    )
    assert [(c.number, c.source, c.heading) for c in answer.citations] == [
        (1, "flux.md", "Rollback > With Flux")
    ]
    assert answer.citations[0].snippet == PASSAGES[0][2] and answer.citations[0].score == 0.9
    assert answer.usage == {"input_tokens": 210, "output_tokens": 7, "estimated": False}
    assert (answer.prompt_name, answer.prompt_version, answer.prompt_label) == (
        "qa",
        1,
        "production",
    )
    assert answer.embedding == "lexical (t)"


def test_the_prompt_version_of_the_label_gets_the_numbered_passages(
    rag_settings: Settings, prompts: PromptRegistry
) -> None:
    """The parrot answers with the prompt it was given: v2's template, filled in."""
    answer = ask(generator(rag_settings, prompts, lambda p: ParrotFakeChatModel()), "staging")
    assert answer.prompt_version == 2 and answer.prompt_label == "staging"
    assert answer.text == "Q: How do I roll back?\nUse only:\n" + numbered_passages(
        hits_of(PASSAGES)
    )
    assert "[1] flux.md > Rollback > With Flux\nSuspend Flux" in answer.text
    assert "[2] kubectl.md\nUndo the rollout" in answer.text
    # It cites no number of its own: every passage it was given is listed.
    assert [c.number for c in answer.citations] == [1, 2]
    assert answer.usage["estimated"] is True


def test_a_streamed_answer_is_tokens_then_citations_then_done(
    rag_settings: Settings, prompts: PromptRegistry
) -> None:
    """The tokens add up to the answer; time to first token is measured; usage estimated."""
    before = sample("llm_time_to_first_token_seconds_count", model="fake-model")
    gen = generator(rag_settings, prompts, lambda p: FakeListChatModel(responses=["Undo it [2]."]))
    events = stream(gen)
    kinds = [event.kind for event in events]
    assert kinds == ["token"] * len("Undo it [2].") + ["citations", "done"]
    done = events[-1].answer
    assert done is not None and done.text == "".join(e.text for e in events if e.kind == "token")
    assert [c.number for c in done.citations] == [2] and events[-2].answer == done
    assert done.usage["estimated"] is True and done.usage["output_tokens"] == 3
    assert sample("llm_time_to_first_token_seconds_count", model="fake-model") == before + 1


def test_no_relevant_passage_is_i_dont_know_without_calling_the_llm(
    rag_settings: Settings, prompts: PromptRegistry
) -> None:
    """Nothing above the threshold: mode none, no model made, no LLM request counted."""
    made: list[BaseChatModel] = []

    def factory(prompt: PromptVersion) -> BaseChatModel:
        made.append(FakeListChatModel(responses=["never"]))
        return made[-1]

    before = sample("llm_requests_total", model="fake-model", prompt_version="1", status="ok")
    gen = generator(rag_settings, prompts, factory, passages=[])
    answer = ask(gen)
    assert (answer.mode, answer.citations, answer.prompt_version) == ("none", [], 1)
    assert answer.text.startswith("I don't know")
    assert [e.kind for e in stream(gen)] == ["token", "citations", "done"]
    assert made == []
    assert (
        sample("llm_requests_total", model="fake-model", prompt_version="1", status="ok") == before
    )


def test_without_an_llm_the_passages_are_quoted(
    rag_settings: Settings, prompts: PromptRegistry
) -> None:
    """The extractive answerer, labelled so, counted under the model 'extractive'."""
    before = sample("llm_requests_total", model="extractive", prompt_version="1", status="ok")
    gen = generator(rag_settings, prompts, None)
    answer = ask(gen, question="How do I suspend flux?")
    assert (answer.mode, answer.model, gen.mode) == ("extractive", "extractive", "extractive")
    assert answer.text == '"Suspend Flux with flux suspend, then revert the commit." [1]'
    assert (
        sample("llm_requests_total", model="extractive", prompt_version="1", status="ok")
        == before + 1
    )
    events = stream(gen)
    assert [e.kind for e in events][-2:] == ["citations", "done"]


def test_an_llm_failure_is_an_error_counted_and_streamed(
    rag_settings: Settings, prompts: PromptRegistry, spans: InMemorySpanExporter
) -> None:
    """A timeout becomes an LLMError with its reason; the stream ends with an error event."""
    labels = {"model": "fake-model", "prompt_version": "1", "status": "error"}
    before = sample("llm_requests_total", **labels)
    gen = generator(rag_settings, prompts, lambda p: FakeTimeoutChatModel(messages=iter([])))
    with pytest.raises(LLMError, match=r"did not answer within 30 s \(LLM_TIMEOUT_SECONDS\)"):
        ask(gen)
    events = stream(gen)
    assert [e.kind for e in events] == ["error"] and "did not answer within" in events[0].text
    assert sample("llm_requests_total", **labels) == before + 2
    chat = [span for span in spans.get_finished_spans() if span.name == "chat fake-model"]
    assert len(chat) == 2 and all(not span.status.is_ok for span in chat)


def test_an_empty_llm_answer_is_a_failure(rag_settings: Settings, prompts: PromptRegistry) -> None:
    """Nothing to show and nothing cited: the endpoint failed to answer."""
    gen = generator(rag_settings, prompts, lambda p: FakeListChatModel(responses=["  "]))
    with pytest.raises(LLMError, match="the LLM endpoint answered with no text"):
        ask(gen)


def test_a_stream_failing_midway_sends_what_came_then_the_error(
    rag_settings: Settings, prompts: PromptRegistry
) -> None:
    """The tokens already sent stay; no citations or done follow an error."""
    factory: Factory = lambda p: FakeListChatModel(responses=["abcdef"], error_on_chunk_number=3)  # noqa: E731
    events = stream(generator(rag_settings, prompts, factory))
    assert [e.kind for e in events] == ["token"] * 3 + ["error"]
    assert "not an OpenAI-compatible chat completion (FakeListChatModelError" in events[-1].text


def test_spans_carry_the_genai_attributes(
    rag_settings: Settings, prompts: PromptRegistry, spans: InMemorySpanExporter
) -> None:
    """A retrieve span and a chat client span with the request, response and usage."""
    message = AIMessage(
        "x [1]",
        usage_metadata={"input_tokens": 50, "output_tokens": 2, "total_tokens": 52},
        response_metadata={"model_name": "served"},
    )
    ask(generator(rag_settings, prompts, lambda p: GenericFakeChatModel(messages=iter([message]))))
    found = {span.name: span for span in spans.get_finished_spans()}
    assert dict(found["retrieve"].attributes or {}) == {"rag.embedding": "lexical", "rag.hits": 2}
    attributes = dict(found["chat fake-model"].attributes or {})
    assert attributes == {
        "gen_ai.system": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "fake-model",
        "gen_ai.request.temperature": 0.1,
        "gen_ai.request.max_tokens": 256,
        "rag.prompt.name": "qa",
        "rag.prompt.version": 1,
        "gen_ai.response.model": "served",
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.output_tokens": 2,
        "rag.usage.estimated": False,
    }


def test_token_and_latency_metrics_count_each_answer(
    rag_settings: Settings, prompts: PromptRegistry
) -> None:
    """Prompt and completion tokens by model; latency, retrieval latency and hits observed."""
    message = AIMessage(
        "y", usage_metadata={"input_tokens": 40, "output_tokens": 5, "total_tokens": 45}
    )
    names = ("llm_request_latency_seconds_count", "rag_retrieval_latency_seconds_count")
    before = [
        sample("llm_tokens_total", type=t, model="fake-model") for t in ("prompt", "completion")
    ]
    latency = sample(names[0], model="fake-model"), sample(names[1], embedding="lexical")
    hits = sample("rag_retrieval_hits_sum", embedding="lexical")
    ask(generator(rag_settings, prompts, lambda p: GenericFakeChatModel(messages=iter([message]))))
    after = [
        sample("llm_tokens_total", type=t, model="fake-model") for t in ("prompt", "completion")
    ]
    assert [a - b for a, b in zip(after, before, strict=True)] == [40, 5]
    assert sample(names[0], model="fake-model") == latency[0] + 1
    assert sample(names[1], embedding="lexical") == latency[1] + 1
    assert sample("rag_retrieval_hits_sum", embedding="lexical") == hits + 2


def test_labels_resolve_to_versions(rag_settings: Settings, prompts: PromptRegistry) -> None:
    """No label means rag.yaml's; the label is recorded with the version it chose."""
    gen = generator(rag_settings, prompts, None)
    assert [(p.version, label) for p, label in (gen.resolve(None), gen.resolve("staging"))] == [
        (1, "production"),
        (2, "staging"),
    ]


def test_cited_numbers_are_read_in_order_once_and_within_range() -> None:
    """[2], [1, 3] and [2] again give 2, 1, 3; [9] is not a passage."""
    assert cited_numbers("a [2] b [1, 3] c [2] d [9] e [x]", 3) == [2, 1, 3]
