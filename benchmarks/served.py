"""The portal served over HTTP for a benchmark: uvicorn in a subprocess, and timed GETs.

``served(factory, env)`` starts ``uvicorn --factory <factory>`` (a ``module:function``
returning the app) on a free loopback port with ``env`` added to the environment, waits
for ``/healthz`` and stops it afterwards; ``get`` times one request until the whole body
arrived. A request that is not answered 200 ends the benchmark with what it got.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from portal.integrations.prometheus_local import free_port

REPO = Path(__file__).resolve().parent.parent
START_SECONDS = 60.0


def get(
    port: int, path: str, headers: Mapping[str, str] | None = None, timeout: float = 120.0
) -> tuple[float, bytes]:
    """GET ``path`` as a browser would; return the seconds until the whole body, and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        started = time.perf_counter()
        connection.request("GET", path, headers={"Accept": "text/html", **(headers or {})})
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    if response.status != 200:
        raise SystemExit(f"GET {path} answered {response.status}: {body[:500]!r}")
    return elapsed, body


@contextmanager
def served(factory: str, env: Mapping[str, str]) -> Iterator[int]:
    """Serve the app ``factory`` makes with uvicorn in a subprocess; yield its port."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", factory]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if server.poll() is not None:
                raise SystemExit(f"uvicorn exited with {server.returncode}")
            try:
                get(port, "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"the portal did not answer /healthz within {START_SECONDS:g} s"
                    ) from None
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
