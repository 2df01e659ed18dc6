"""The LLM: any OpenAI-compatible endpoint (vLLM, Ollama) through langchain-openai.

One :class:`~langchain_openai.ChatOpenAI` per prompt version (its model parameters are
part of the model), no retries (a slow endpoint is reported, not hammered), usage asked for
in streams. Token counts come only from the endpoint's usage: langchain's own counting
needs tiktoken, which downloads its encodings, and the service reaches no internet; when an
endpoint reports none, the counts are estimated from the characters (4 a token) and the
answer says so. Every failure of the endpoint becomes an :class:`LLMError` whose reason
names what went wrong, answered as a 502.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import SecretStr

from .prompts import PromptVersion
from .settings import Settings

ChatModelFactory = Callable[[PromptVersion], BaseChatModel]
CHARS_PER_TOKEN = 4
REASON_CHARS = 300
_ERROR_CODE = re.compile(r"^Error code: \d+ - ")


class LLMError(RuntimeError):
    """The LLM endpoint failed to answer; ``reason`` says how, for the caller and the logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OpenAIChatModels:
    """Makes the chat model of a prompt version; all share one HTTP client, closed at the end.

    The client is the service's own (not langchain-openai's process-wide default) so its
    connections belong to the service's event loop and close with it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(timeout=settings.llm_timeout_seconds)

    def __call__(self, prompt: PromptVersion) -> BaseChatModel:
        """Return a client of the endpoint with the version's model parameters."""
        from langchain_openai import ChatOpenAI

        settings = self.settings
        parameters: dict[str, Any] = dict(prompt.model_parameters)
        return ChatOpenAI(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            # Endpoints in the cluster often need no key; the client insists on one.
            api_key=SecretStr(settings.llm_api_key or "unused"),
            timeout=settings.llm_timeout_seconds,
            max_retries=0,
            stream_usage=True,
            http_async_client=self._client,
            **parameters,
        )

    async def aclose(self) -> None:
        """Close the connections to the endpoint."""
        await self._client.aclose()


def openai_chat_models(settings: Settings) -> OpenAIChatModels | None:
    """Return the chat models of ``LLM_BASE_URL``, or None when it is empty (extractive)."""
    return OpenAIChatModels(settings) if settings.llm_base_url else None


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= REASON_CHARS else flat[: REASON_CHARS - 1] + "…"


def llm_error(error: BaseException, settings: Settings) -> LLMError:
    """Translate what the client raised into an :class:`LLMError` with a readable reason."""
    if isinstance(error, LLMError):
        return error
    if isinstance(error, openai.APITimeoutError):
        return LLMError(
            f"the LLM endpoint did not answer within {settings.llm_timeout_seconds:g} s "
            "(LLM_TIMEOUT_SECONDS)"
        )
    if isinstance(error, openai.APIStatusError):
        body = error.body
        message = body.get("message") if isinstance(body, dict) else None
        # Without a JSON error the client writes "Error code: 500 - <the text>".
        text = str(message) if message else _ERROR_CODE.sub("", error.message or str(error))
        return LLMError(f"the LLM endpoint answered HTTP {error.status_code}: {_short(text)}")
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error
        return LLMError(
            f"the LLM endpoint {settings.llm_base_url} cannot be reached: {_short(str(cause))}"
        )
    return LLMError(
        "the LLM endpoint's answer is not an OpenAI-compatible chat completion "
        f"({type(error).__name__}: {_short(str(error))})"
    )


def estimate_tokens(text: str) -> int:
    """Estimate a text's tokens from its length (about 4 characters a token in English)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def usage_of(message: BaseMessage | None, prompt_text: str, answer_text: str) -> dict[str, Any]:
    """Return the call's token counts: the endpoint's, or estimated (and labelled so)."""
    reported = getattr(message, "usage_metadata", None) if message is not None else None
    if reported and (reported.get("input_tokens") or reported.get("output_tokens")):
        return {
            "input_tokens": int(reported.get("input_tokens", 0)),
            "output_tokens": int(reported.get("output_tokens", 0)),
            "estimated": False,
        }
    return {
        "input_tokens": estimate_tokens(prompt_text),
        "output_tokens": estimate_tokens(answer_text),
        "estimated": True,
    }


def response_model(message: BaseMessage | None, default: str) -> str:
    """Return the model the endpoint says answered (it may differ from the one asked)."""
    metadata = getattr(message, "response_metadata", None) or {}
    name = metadata.get("model_name") or metadata.get("model")
    return str(name) if name else default


def text_of(message: BaseMessage | None) -> str:
    """Return a message's text, whatever shape its content has."""
    if message is None:
        return ""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)
