"""A rendered service's ASGI app served for real: uvicorn in a child process, as the image runs it.

The child gets a bare environment: no PYTHONPATH of the portal, and every proxy variable
pointing at a closed loopback port, so a service that tries to reach the internet fails
fast instead of reaching it (loopback stand-ins stay reachable through NO_PROXY).
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT = 60.0
CLOSED_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there


def offline_env(**extra: str) -> dict[str, str]:
    """Return a child environment that cannot reach the internet, plus ``extra``."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[key] = env[key.lower()] = CLOSED_PROXY
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(bytecode_env())
    env.update(extra)
    return env


# Set by the test run (tests/conftest.py) to a folder of its own, shared by its workers.
PYCACHE_VARIABLE = "PORTAL_TEST_PYCACHE"


def bytecode_env() -> dict[str, str]:
    """Where a service's process keeps compiled modules: never beside their sources.

    The venvs are installed without byte-compiling and a rendered service's folder stays
    as it was rendered; each module is compiled once per test run, in the run's own
    folder, instead of at every start. Outside a test run: not written at all.
    """
    prefix = os.environ.get(PYCACHE_VARIABLE)
    return {"PYTHONPYCACHEPREFIX": prefix} if prefix else {"PYTHONDONTWRITEBYTECODE": "1"}


def status_of(port: int, path: str) -> int | None:
    """Return the status of ``GET path`` on 127.0.0.1:port, or None when nothing answers."""
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
def serving_app(
    service_dir: Path,
    env: Mapping[str, str],
    *,
    python: Path | None = None,
    ready_path: str = "/healthz",
    timeout: float = START_TIMEOUT,
) -> Iterator[str]:
    """Run ``app.main:app`` of a rendered service with uvicorn; yield its URL once ready.

    Ready means ``ready_path`` answers 200. The listening socket is bound here (port 0, so
    the OS picks a free one) and handed to uvicorn with ``--fd``: no race for the port.
    ``python`` is the interpreter of the venv to run it in (default: the portal's own).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = int(listener.getsockname()[1])
    command = [str(python or sys.executable), "-m", "uvicorn", "app.main:app"]
    command += ["--fd", str(listener.fileno()), "--log-level", "warning", "--no-access-log"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=service_dir,
            env=dict(env),
            pass_fds=(listener.fileno(),),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        listener.close()  # the child holds its own copy
        try:
            deadline = time.monotonic() + timeout
            while status_of(port, ready_path) != 200:
                if process.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise RuntimeError(f"the service exited while starting:\n{output}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ready_path} did not answer 200 within {timeout}s")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - only when shutdown hangs
                process.kill()
                process.wait(timeout=10)
