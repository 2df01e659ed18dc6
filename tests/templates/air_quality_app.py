"""A rendered air-quality service running for real: uvicorn in a child process, fed by a
loopback stand-in for Open-Meteo that serves a recorded response (never the internet)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.loopback_http import serving

START_TIMEOUT = 60.0


@contextmanager
def open_meteo_stand_in(body: bytes) -> Iterator[str]:
    """Serve ``body`` as the answer to ``GET /v1/air-quality`` on 127.0.0.1; yield the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path.split("?", 1)[0] == "/v1/air-quality"
            payload = body if found else b'{"error": true, "reason": "not found"}'
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Handler, name="open-meteo-stand-in") as port:
        yield f"http://127.0.0.1:{port}"


def _status(port: int, path: str) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


@contextmanager
def running_service(
    service_dir: Path, open_meteo_url: str, model_dir: Path, python: Path | None = None
) -> Iterator[str]:
    """Run ``app.main:app`` of a rendered service with uvicorn; yield its URL once ready.

    The listening socket is bound here (port 0, so the OS picks a free one) and handed to
    uvicorn with ``--fd``: no race for the port. Ready means ``/readyz`` answers 200, i.e.
    the service fetched the data and trained its model. ``python`` is the interpreter of
    the venv to run it in (default: the portal's own).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = int(listener.getsockname()[1])
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env.update(
        OPEN_METEO_URL=open_meteo_url,
        MODEL_DIR=str(model_dir),
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
        RETRY_BACKOFF_SECONDS="0.1",
    )
    command = [str(python or sys.executable), "-m", "uvicorn", "app.main:app"]
    command += ["--fd", str(listener.fileno())]
    command += ["--log-level", "warning", "--no-access-log"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=service_dir,
            env=env,
            pass_fds=(listener.fileno(),),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        listener.close()  # the child holds its own copy
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while _status(port, "/readyz") != 200:
                if process.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise RuntimeError(f"the service exited while starting:\n{output}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"/readyz did not answer 200 within {START_TIMEOUT}s")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - only when shutdown hangs
                process.kill()
                process.wait(timeout=10)
