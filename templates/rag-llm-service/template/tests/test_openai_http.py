"""The service against a local OpenAI-compatible endpoint over real HTTP (loopback).

The stand-in answers ``POST /v1/chat/completions`` as vLLM does: a chat completion with
its usage, or (``stream``) server-sent chunks ending with a usage chunk and ``[DONE]``;
or garbage, a 500, or too late. langchain-openai and the openai client run for real.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import tiktoken
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.settings import Settings

from .conftest import started
from .test_api import sse_events

ANSWER = "Suspend Flux first [1], then revert."
QUESTION = "How do I suspend the kustomization with flux?"
USAGE = {"prompt_tokens": 321, "completion_tokens": 9, "total_tokens": 330}


class OpenAIStub:
    """A chat-completions endpoint on 127.0.0.1 whose behaviour a test chooses."""

    def __init__(self) -> None:
        self.behaviour = "ok"  # ok, no_usage, garbage, error, slow
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                """Answer one chat completion."""
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                )
                status, kind, data = stub.answer(body)
                time.sleep(stub.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, format: str, *args: object) -> None:
                """Keep test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, body: dict[str, Any]) -> tuple[int, str, bytes]:
        """Return the status, content type and bytes of the answer."""
        if self.behaviour == "garbage":
            return 200, "text/html", b"<html><body>502 Bad Gateway (proxy)</body></html>"
        if self.behaviour == "error":
            error = {"error": {"message": "model overloaded", "type": "server_error"}}
            return 500, "application/json", json.dumps(error).encode()
        usage = None if self.behaviour == "no_usage" else USAGE
        if body.get("stream"):
            return 200, "text/event-stream", self._chunks(body, usage)
        completion = {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "served-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER},
                    "finish_reason": "stop",
                }
            ],
        }
        if usage:
            completion["usage"] = usage
        return 200, "application/json", json.dumps(completion).encode()

    def _chunks(self, body: dict[str, Any], usage: dict[str, int] | None) -> bytes:
        def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "served-model",
                "choices": [choice],
            }

        words = ANSWER.split(" ")
        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        chunks.append(chunk({}, "stop"))
        if usage and (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(
                {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "served-model",
                    "choices": [],
                    "usage": usage,
                }
            )
        lines = [f"data: {json.dumps(item)}\n\n" for item in chunks] + ["data: [DONE]\n\n"]
        return "".join(lines).encode()

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def stub_server() -> Iterator[OpenAIStub]:
    """Start one stand-in for the whole run."""
    stub = OpenAIStub()
    yield stub
    stub.close()


@pytest.fixture
def stub(stub_server: OpenAIStub, monkeypatch: pytest.MonkeyPatch) -> OpenAIStub:
    """Return the stand-in answering normally; tiktoken made to fail if anything calls it."""

    def no_tiktoken(*args: object, **kwargs: object) -> None:
        raise AssertionError("tiktoken was called: it downloads its encodings")

    monkeypatch.setattr(tiktoken, "get_encoding", no_tiktoken)
    monkeypatch.setattr(tiktoken, "encoding_for_model", no_tiktoken)
    stub_server.behaviour, stub_server.delay = "ok", 0.0
    stub_server.requests.clear()
    return stub_server


@pytest.fixture
def llm_client(service_settings: Settings, stub: OpenAIStub) -> Iterator[TestClient]:
    """Yield the started service using the stand-in as its LLM."""
    settings = dataclasses.replace(service_settings, llm_base_url=stub.url, llm_timeout_seconds=5.0)
    with started(settings) as client:
        yield client


def count(name: str, **labels: str) -> float:
    """Return a metric's current value (0 before it is first counted)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


OK = {"model": "test-model", "prompt_version": "1", "status": "ok"}
ERROR = {**OK, "status": "error"}


def test_an_answer_comes_from_the_endpoint_with_its_usage(
    llm_client: TestClient, stub: OpenAIStub
) -> None:
    """The prompt carries the numbered passages and the version's parameters; usage is read."""
    before = (
        count("llm_requests_total", **OK),
        count("llm_tokens_total", type="prompt", model="test-model"),
    )
    body = llm_client.post("/api/ask", json={"question": QUESTION}).json()
    assert (body["answer"], body["mode"], body["model"]) == (ANSWER, "llm", "served-model")
    assert body["usage"] == {"input_tokens": 321, "output_tokens": 9, "estimated": False}
    assert [c["number"] for c in body["citations"]] == [1]
    assert body["citations"][0]["source"] == "rollback.md"
    (request,) = stub.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer unused"
    assert (request["model"], request["temperature"], request["max_completion_tokens"]) == (
        "test-model",
        0.1,
        256,
    )
    assert request["stream"] is False
    (message,) = request["messages"]
    assert message["role"] == "user" and f"Question: {QUESTION}" in message["content"]
    assert "[1] rollback.md > Rollback runbook > With Flux\n" in message["content"]
    assert count("llm_requests_total", **OK) == before[0] + 1
    assert count("llm_tokens_total", type="prompt", model="test-model") == before[1] + 321


def test_a_streamed_answer_arrives_token_by_token_with_the_usage_chunk(
    llm_client: TestClient, stub: OpenAIStub
) -> None:
    """Usage asked for in the stream and read from its last chunk; first token timed."""
    ttft = count("llm_time_to_first_token_seconds_count", model="test-model")
    events = sse_events(llm_client.get("/api/ask/stream", params={"question": QUESTION}).text)
    tokens = [data["text"] for kind, data in events if kind == "token"]
    assert tokens == ["Suspend", " Flux", " first", " [1],", " then", " revert."]
    done = events[-1][1]
    assert events[-1][0] == "done" and done["answer"] == ANSWER
    assert done["usage"] == {"input_tokens": 321, "output_tokens": 9, "estimated": False}
    assert stub.requests[0]["stream"] is True
    assert stub.requests[0]["stream_options"] == {"include_usage": True}
    assert count("llm_time_to_first_token_seconds_count", model="test-model") == ttft + 1


def test_an_endpoint_without_usage_gets_estimated_counts(
    llm_client: TestClient, stub: OpenAIStub
) -> None:
    """Characters / 4, labelled estimated, for the whole answer and the stream."""
    stub.behaviour = "no_usage"
    body = llm_client.post("/api/ask", json={"question": QUESTION}).json()
    assert body["usage"]["estimated"] is True
    assert body["usage"]["output_tokens"] == -(-len(ANSWER) // 4)
    assert body["usage"]["input_tokens"] > 20
    events = sse_events(llm_client.get("/api/ask/stream", params={"question": QUESTION}).text)
    assert events[-1][1]["usage"]["estimated"] is True


@pytest.mark.parametrize(
    ("behaviour", "reason", "streamed"),
    [
        (
            "garbage",
            "the LLM endpoint's answer is not an OpenAI-compatible chat completion (ValueError: "
            "Unexpected response type",
            "the LLM endpoint's answer is not an OpenAI-compatible chat completion (ValueError: "
            "No generation chunks were returned)",
        ),
        (
            "error",
            "the LLM endpoint answered HTTP 500: model overloaded",
            "the LLM endpoint answered HTTP 500: model overloaded",
        ),
    ],
)
def test_a_failing_endpoint_is_a_502_with_the_reason_and_counted(
    llm_client: TestClient, stub: OpenAIStub, behaviour: str, reason: str, streamed: str
) -> None:
    """Garbage and server errors: 502 naming llm, an error event, llm_requests_total errors."""
    stub.behaviour = behaviour
    before = count("llm_requests_total", **ERROR)
    response = llm_client.post("/api/ask", json={"question": QUESTION})
    assert response.status_code == 502
    (error,) = response.json()["errors"]
    assert error["field"] == "llm" and error["message"].startswith(reason)
    events = sse_events(llm_client.get("/api/ask/stream", params={"question": QUESTION}).text)
    assert [kind for kind, _ in events] == ["error"]
    assert events[0][1]["message"].startswith(streamed)
    assert count("llm_requests_total", **ERROR) == before + 2
    assert len(stub.requests) == 2  # no retries


def test_a_slow_endpoint_times_out_as_a_502(service_settings: Settings, stub: OpenAIStub) -> None:
    """Beyond LLM_TIMEOUT_SECONDS the caller gets the reason, soon after the timeout."""
    stub.delay = 1.5
    settings = dataclasses.replace(service_settings, llm_base_url=stub.url, llm_timeout_seconds=0.3)
    before = count("llm_requests_total", **ERROR)
    with started(settings) as client:
        began = time.monotonic()
        response = client.post("/api/ask", json={"question": QUESTION})
        elapsed = time.monotonic() - began
        events = sse_events(client.get("/api/ask/stream", params={"question": QUESTION}).text)
    assert response.status_code == 502 and elapsed < 1.4
    message = "the LLM endpoint did not answer within 0.3 s (LLM_TIMEOUT_SECONDS)"
    assert response.json()["errors"] == [{"field": "llm", "message": message}]
    assert events == [("error", {"field": "llm", "message": message})]
    assert count("llm_requests_total", **ERROR) == before + 2


def test_the_api_key_is_sent_when_set(service_settings: Settings, stub: OpenAIStub) -> None:
    """From the Secret, as a bearer token."""
    settings = dataclasses.replace(service_settings, llm_base_url=stub.url, llm_api_key="sk-test")
    with started(settings) as client:
        assert client.post("/api/ask", json={"question": QUESTION}).status_code == 200
    assert stub.requests[0]["auth"] == "Bearer sk-test"
