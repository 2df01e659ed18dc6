"""A rendered air-quality service running for real: uvicorn in a child process, fed by a
loopback stand-in for Open-Meteo that serves a recorded response (never the internet).

:func:`train_versions` makes such a service log model versions to a real MLflow server,
one per recording it is fed (the portal's model tests build their registry with it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from tests.loopback_http import serving
from tests.templates.service_process import offline_env, serving_app
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv

TEMPLATE_NAME = "air-quality-monitor"
FIXTURES = Path("tests") / "fixtures"  # of a rendered service
# Recorded responses in a rendered service's fixtures (their README says where from). The
# forecast's holdout error differs between them: on LAHORE (5 days) the forecasters fall
# back to persistence (holdout_relative_mae 1.0); on LAHORE_PM25 (7 days, PM2.5 only) a
# ridge model beats persistence (about 0.72). Lower is better.
LAHORE = "open_meteo_air_quality_lahore.json"
LAHORE_PM25 = "open_meteo_air_quality_lahore_7day_nulls.json"


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
    service_dir: Path,
    open_meteo_url: str,
    model_dir: Path,
    python: Path | None = None,
    **extra_env: str,
) -> Iterator[str]:
    """Run the rendered air-quality service fed by ``open_meteo_url``; yield its URL once ready.

    Ready means ``/readyz`` answers 200, i.e. the service fetched the data and trained its
    model (or, with ``MODEL_VERSION`` in ``extra_env``, loaded that version). ``python`` is
    the interpreter of the venv to run it in (default: the portal's own).
    """
    env = offline_env(
        OPEN_METEO_URL=open_meteo_url,
        MODEL_DIR=str(model_dir),
        LOG_LEVEL="WARNING",
        RETRY_BACKOFF_SECONDS="0.1",
        **extra_env,
    )
    with serving_app(service_dir, env, python=python, ready_path="/readyz") as url:
        yield url


def service_json(url: str, path: str) -> Any:
    """Return the JSON answer of ``GET path`` of a running service (a 200 is expected)."""
    response = httpx.get(url + path, timeout=30)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response.json()


def train_versions(
    service_dir: Path,
    mlflow_url: str,
    recordings: Sequence[str],
    work: Path,
    python: Path | None = None,
) -> list[dict[str, Any]]:
    """Train N versions of a generated air-quality service against MLflow; return its cards.

    For each recording (a file name in the service's ``tests/fixtures``, e.g. ``LAHORE``)
    the service is started from its runtime lock with ``MLFLOW_TRACKING_URI=mlflow_url``
    and an empty model folder under ``work``, fed that recording: it trains at once and
    logs the model as the next version of ``<service>-air-quality``. Returns each start's
    ``GET /api/model`` (the card plus ``registry``, whose ``version`` is MLflow's), in order.
    """
    python = python or lock_venv(service_dir / RUNTIME_LOCK, TEMPLATE_NAME)
    models: list[dict[str, Any]] = []
    for index, recording in enumerate(recordings):
        body = (service_dir / FIXTURES / recording).read_bytes()
        with (
            open_meteo_stand_in(body) as open_meteo,
            running_service(
                service_dir,
                open_meteo,
                work / f"models-{index}",
                python,
                MLFLOW_TRACKING_URI=mlflow_url,
            ) as url,
        ):
            model = service_json(url, "/api/model")
        assert model["registry"]["source"] == "mlflow", f"{recording}: not logged: {model}"
        models.append(model)
    return models
