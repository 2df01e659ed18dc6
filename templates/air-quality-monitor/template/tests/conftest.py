"""Fixtures: a local stand-in for the Open-Meteo API serving the recorded responses, and the app.

The stand-in is a real HTTP server on 127.0.0.1 (a free port), so the app's httpx client,
timeouts and retries run for real; nothing reaches the internet.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
LAHORE = "open_meteo_air_quality_lahore.json"
# 09:00 UTC is 14:00 in Lahore (UTC+5): the history ends at 14:00 of the fixture's "today".
NOW = datetime(2026, 10, 11, 9, 0, tzinfo=UTC)


@dataclass
class Reply:
    """One canned answer of the stand-in server."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)


def fixture_reply(name: str, status: int = 200, **headers: str) -> Reply:
    """Answer with a fixture file."""
    return Reply(status, (FIXTURES / name).read_bytes(), dict(headers))


class OpenMeteoStub:
    """Serves queued replies (the last one repeats) and records every request's query."""

    def __init__(self) -> None:
        self.replies: list[Reply] = [fixture_reply(LAHORE)]
        self.requests: list[dict[str, list[str]]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                """Answer with the next queued reply."""
                url = urlsplit(self.path)
                with stub._lock:
                    stub.paths.append(url.path)
                    stub.requests.append(parse_qs(url.query))
                    reply = stub.replies.pop(0) if len(stub.replies) > 1 else stub.replies[0]
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                """Keep test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, *replies: Reply) -> None:
        """Queue the replies to give, in order; the last one keeps being given."""
        with self._lock:
            self.replies = list(replies)
            self.requests.clear()
            self.paths.clear()

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        """Return the current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def stub_server() -> Iterator[OpenMeteoStub]:
    """Start one stand-in server for the whole run."""
    server = OpenMeteoStub()
    yield server
    server.close()


@pytest.fixture
def stub(stub_server: OpenMeteoStub) -> OpenMeteoStub:
    """Reset the stand-in server to answer the Lahore recording until told otherwise."""
    stub_server.serve(fixture_reply(LAHORE))
    return stub_server


@pytest.fixture
def settings(stub: OpenMeteoStub, tmp_path: Path) -> Settings:
    """Return settings pointing at the stand-in, with fast retries and no background loop."""
    return replace(
        Settings(),
        city="Testville",
        pollutants=("pm2_5", "pm10", "nitrogen_dioxide"),
        open_meteo_url=stub.url,
        model_dir=tmp_path / "models",
        refresh_seconds=1800,
        retrain_seconds=6 * 3600,
        anomaly_contamination=0.05,
        retry_backoff_seconds=0.0,
        failure_backoff_seconds=60.0,
        http_timeout_seconds=5.0,
        background_refresh=False,
    )


@pytest.fixture
def clock() -> Clock:
    """Return a fixed clock (14:00 in Lahore on the recording's fourth day)."""
    return Clock()


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """Yield a client of the started app."""
    with TestClient(create_app(settings, clock=clock)) as test_client:
        yield test_client


def load_fixture(name: str) -> object:
    """Return a fixture's JSON."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """Yield an http URL of a loopback port that refuses every connection during the test.

    The socket stays bound without listening, so the kernel refuses connections and no
    other process can take the port meanwhile: a port closed again right away can be taken
    by another test's server, which may accept and never answer.
    """
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"
