"""A rendered air-quality service running for real: uvicorn in a child process, fed by a
loopback stand-in for Open-Meteo that serves a recorded response (never the internet)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.loopback_http import serving
from tests.templates.service_process import offline_env, serving_app


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


@contextmanager
def running_service(
    service_dir: Path, open_meteo_url: str, model_dir: Path, python: Path | None = None
) -> Iterator[str]:
    """Run the rendered air-quality service fed by ``open_meteo_url``; yield its URL once ready.

    Ready means ``/readyz`` answers 200, i.e. the service fetched the data and trained its
    model. ``python`` is the interpreter of the venv to run it in (default: the portal's own).
    """
    env = offline_env(
        OPEN_METEO_URL=open_meteo_url,
        MODEL_DIR=str(model_dir),
        LOG_LEVEL="WARNING",
        RETRY_BACKOFF_SECONDS="0.1",
    )
    with serving_app(service_dir, env, python=python, ready_path="/readyz") as url:
        yield url
