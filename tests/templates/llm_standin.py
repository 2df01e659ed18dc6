"""A local OpenAI-compatible chat endpoint over real HTTP, for the RAG service's tests.

It answers ``POST /v1/chat/completions`` as vLLM or Ollama would: one JSON completion, or
with ``"stream": true`` server-sent chunks, then (when ``stream_options.include_usage``)
a chunk with no choices carrying the usage, then ``data: [DONE]``. The answer is split into
the given tokens; a stream may wait ``delay`` seconds between them and hold after its
first ``hold_after`` tokens until :meth:`LLMStandIn.release` (so a test can see the page
in between, without racing a timer). With ``garbage`` set it answers 200 with a body that
is not a chat completion. Every request body is kept for the tests to read.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GARBAGE = b"<html><body>upstream proxy error</body></html>"
HOLD_TIMEOUT = 30.0


@dataclass
class LLMStandIn:
    """What the endpoint answers, and what it was asked."""

    tokens: list[str]
    prompt_tokens: int = 321
    completion_tokens: int = 17
    model: str = "standin-chat-1"
    delay: float = 0.0
    hold_after: int | None = None
    garbage: bool = False
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    _gate: threading.Event = field(default_factory=threading.Event)

    @property
    def text(self) -> str:
        """Return the whole answer."""
        return "".join(self.tokens)

    def release(self) -> None:
        """Let a held stream send the rest of its tokens."""
        self._gate.set()

    def completion(self) -> dict[str, Any]:
        """Return the non-streamed answer."""
        return {
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.text},
                    "finish_reason": "stop",
                }
            ],
            "usage": self.usage(),
        }

    def usage(self) -> dict[str, int]:
        """Return the usage the endpoint reports."""
        total = self.prompt_tokens + self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
        }

    def chunk(self, delta: dict[str, str], finish: str | None) -> dict[str, Any]:
        """Return one streamed chunk."""
        return {
            "id": "chatcmpl-standin",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }


def _handler(standin: LLMStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: the stream ends when the connection closes, no chunked encoding needed.
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _event(self, data: dict[str, Any] | str) -> None:
            text = data if isinstance(data, str) else json.dumps(data)
            self.wfile.write(f"data: {text}\n\n".encode())
            self.wfile.flush()

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            standin.requests.append(body)
            if self.path != "/v1/chat/completions":
                self._send(404, b'{"error": {"message": "not found"}}', "application/json")
            elif standin.garbage:
                self._send(200, GARBAGE, "text/html")
            elif not body.get("stream"):
                self._send(200, json.dumps(standin.completion()).encode(), "application/json")
            else:
                self._stream(bool((body.get("stream_options") or {}).get("include_usage")))

        def _stream(self, include_usage: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self._event(standin.chunk({"role": "assistant", "content": ""}, None))
            for number, token in enumerate(standin.tokens):
                if number == standin.hold_after:
                    standin._gate.wait(HOLD_TIMEOUT)
                if standin.delay:
                    time.sleep(standin.delay)
                self._event(standin.chunk({"content": token}, None))
            self._event(standin.chunk({}, "stop"))
            if include_usage:
                self._event({**standin.chunk({}, None), "choices": [], "usage": standin.usage()})
            self._event("[DONE]")

    return Handler


@contextmanager
def serving_standin(standin: LLMStandIn) -> Iterator[LLMStandIn]:
    """Serve ``standin`` on a free loopback port; its ``url`` is the base URL (``.../v1``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="llm-standin", daemon=True)
    thread.start()
    standin.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield standin
    finally:
        standin.release()  # a held stream must not keep its thread
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
