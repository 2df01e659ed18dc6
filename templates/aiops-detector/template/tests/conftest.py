"""Fixtures: a local stand-in for Prometheus' range API, the settings and the started app.

The app starts with the shipped rules file (``deploy/base/remediation.yaml``: no rules).

The stand-in is a real HTTP server on 127.0.0.1 (a free port) answering
``/api/v1/query_range`` as Prometheus does (a matrix, or Prometheus' error JSON), so the
Prometheus client, its retries and the error handling run for real; nothing reaches the
internet.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

from .synthetic import START

Values = Callable[[np.ndarray], np.ndarray]
SERVICE_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Reply:
    """An error answer: the status and Prometheus' JSON body."""

    status: int
    body: Mapping[str, object]


class PrometheusStub:
    """Answers range queries from functions of time, or with a canned error, and records them."""

    def __init__(self) -> None:
        self.series: dict[str, list[tuple[dict[str, str], Values]]] = {}
        self.errors: dict[str, Reply] = {}
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                """Answer one range query."""
                url = urlsplit(self.path)
                params = {key: values[-1] for key, values in parse_qs(url.query).items()}
                with stub._lock:
                    stub.requests.append(params)
                status, body = stub.answer(url.path, params)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                """Keep test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, Mapping[str, object]]:
        """Return what Prometheus would answer."""
        if path != "/api/v1/query_range":
            return 404, {"status": "error", "error": "not found"}
        query = params.get("query", "")
        if query in self.errors:
            reply = self.errors[query]
            return reply.status, reply.body
        start, end, step = (float(params[key]) for key in ("start", "end", "step"))
        times = start + step * np.arange(int((end - start) // step) + 1)
        result = []
        for labels, values in self.series.get(query, []):
            samples = values(times)
            # A function may answer fewer points (a series that starts late).
            pairs = zip(times[: samples.size], samples, strict=True)
            result.append({"metric": labels, "values": [[float(t), f"{v:.6g}"] for t, v in pairs]})
        return 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}

    def reset(self) -> None:
        """Forget the series, errors and requests."""
        with self._lock:
            self.series.clear()
            self.errors.clear()
            self.requests.clear()

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def prometheus_server() -> Iterator[PrometheusStub]:
    """Start one stand-in server for the whole run."""
    server = PrometheusStub()
    yield server
    server.close()


@pytest.fixture
def prometheus(prometheus_server: PrometheusStub) -> PrometheusStub:
    """Return the stand-in, emptied."""
    prometheus_server.reset()
    return prometheus_server


@pytest.fixture
def settings(prometheus: PrometheusStub, tmp_path: Path) -> Settings:
    """Return settings pointing at the stand-in, without retries or the background loop."""
    return replace(
        Settings(),
        service_name="detector-test",
        prometheus_url=prometheus.url,
        model_dir=tmp_path / "models",
        false_alarm_rate=0.001,
        http_timeout_seconds=5.0,
        max_attempts=1,
        retry_backoff_seconds=0.0,
        background_detect=False,
        remediation_file=SERVICE_ROOT / "deploy" / "base" / "remediation.yaml",
    )


class Clock:
    """A clock the tests set by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        """Return the current time."""
        return self.now


@pytest.fixture
def clock() -> Clock:
    """Return a clock at the synthetic data's eleventh day."""
    return Clock(START.replace(day=12, hour=12, tzinfo=UTC))


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """Yield a client of the started app."""
    with TestClient(create_app(settings, clock=clock)) as test_client:
        yield test_client


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
