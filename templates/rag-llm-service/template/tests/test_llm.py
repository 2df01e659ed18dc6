"""The LLM client: built from the settings and the prompt, its failures named, its usage read."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI

from app.llm import (
    LLMError,
    estimate_tokens,
    llm_error,
    openai_chat_models,
    response_model,
    text_of,
    usage_of,
)
from app.prompts import PromptVersion
from app.settings import Settings

PROMPT = PromptVersion(
    name="qa",
    version=3,
    template="{context} {question}",
    variables=("context", "question"),
    model_parameters={"temperature": 0.3, "max_tokens": 64, "seed": 7},
    note="n",
    sha256="0" * 64,
)
REQUEST = httpx.Request("POST", "http://llm.test/v1/chat/completions")


@pytest.fixture
def llm_settings(rag_settings: Settings) -> Settings:
    """Return settings naming an endpoint (nothing listens there: nothing is called)."""
    return dataclasses.replace(
        rag_settings,
        llm_base_url="http://llm.test/v1",
        llm_model="qwen-test",
        llm_timeout_seconds=2.5,
    )


def test_no_endpoint_means_no_chat_model(rag_settings: Settings) -> None:
    """Without LLM_BASE_URL the service answers extractively."""
    assert openai_chat_models(rag_settings) is None


def test_the_chat_model_carries_the_endpoint_and_the_prompts_parameters(
    llm_settings: Settings,
) -> None:
    """No retries, the timeout, usage in streams, the version's parameters, a key anyway."""
    factory = openai_chat_models(llm_settings)
    assert factory is not None
    model = factory(PROMPT)
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_base == "http://llm.test/v1" and model.model_name == "qwen-test"
    assert model.max_retries == 0 and model.request_timeout == 2.5 and model.stream_usage
    assert (model.temperature, model.max_tokens, model.seed) == (0.3, 64, 7)
    assert model.openai_api_key is not None
    assert model.openai_api_key.get_secret_value() == "unused"
    keyed = openai_chat_models(dataclasses.replace(llm_settings, llm_api_key="k-123"))
    assert keyed is not None
    secret = keyed(PROMPT).openai_api_key
    assert secret is not None and secret.get_secret_value() == "k-123"
    for models in (factory, keyed):
        asyncio.run(models.aclose())


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            openai.APITimeoutError(request=REQUEST),
            "the LLM endpoint did not answer within 2.5 s (LLM_TIMEOUT_SECONDS)",
        ),
        (
            openai.InternalServerError(
                "Error code: 500 - {'message': 'model overloaded'}",
                response=httpx.Response(500, request=REQUEST),
                body={"message": "model overloaded", "type": "server_error"},
            ),
            "the LLM endpoint answered HTTP 500: model overloaded",
        ),
        (
            openai.InternalServerError(
                "Error code: 502 - upstream down",
                response=httpx.Response(502, request=REQUEST),
                body=None,
            ),
            "the LLM endpoint answered HTTP 502: upstream down",
        ),
        (
            openai.NotFoundError(
                "no model qwen-test", response=httpx.Response(404, request=REQUEST), body=None
            ),
            "the LLM endpoint answered HTTP 404: no model qwen-test",
        ),
        (
            openai.APIConnectionError(request=REQUEST),
            "the LLM endpoint http://llm.test/v1 cannot be reached: Connection error.",
        ),
        (
            ValueError("Expecting value: line 1 column 1 (char 0)"),
            "the LLM endpoint's answer is not an OpenAI-compatible chat completion "
            "(ValueError: Expecting value: line 1 column 1 (char 0))",
        ),
    ],
)
def test_every_failure_gets_a_reason(llm_settings: Settings, error: Exception, reason: str) -> None:
    """The reason says what went wrong, for the 502 and the logs."""
    failure = llm_error(error, llm_settings)
    assert isinstance(failure, LLMError) and failure.reason == reason


def test_a_long_reason_is_cut(llm_settings: Settings) -> None:
    """A whole HTML error page never becomes a reason."""
    reason = llm_error(ValueError("x" * 5_000), llm_settings).reason
    assert len(reason) < 420 and reason.endswith("…)")


def test_usage_comes_from_the_endpoint_or_is_estimated_and_says_so() -> None:
    """Counting tokens locally would need tiktoken's downloads: never done."""
    reported = AIMessage(
        "ok", usage_metadata={"input_tokens": 120, "output_tokens": 8, "total_tokens": 128}
    )
    assert usage_of(reported, "p" * 400, "a" * 40) == {
        "input_tokens": 120,
        "output_tokens": 8,
        "estimated": False,
    }
    assert usage_of(AIMessage("ok"), "p" * 401, "a" * 40) == {
        "input_tokens": 101,
        "output_tokens": 10,
        "estimated": True,
    }
    assert estimate_tokens("") == 0 and estimate_tokens("abcde") == 2


def test_text_and_model_of_a_message() -> None:
    """Content as parts is joined; the model the endpoint names wins over the one asked."""
    parts = AIMessage(content=[{"type": "text", "text": "a"}, "b", {"type": "image_url"}])
    assert text_of(parts) == "ab" and text_of(None) == ""
    served = AIMessage("x", response_metadata={"model_name": "qwen-2.5-served"})
    assert response_model(served, "asked") == "qwen-2.5-served"
    assert response_model(AIMessage("x"), "asked") == "asked"
