"""A real ``portal serve`` subprocess on a loopback port, and what git and Copier need of it.

The tests of the template repositories' git service clone, fetch and ``copier update``
through it exactly as another machine would: over HTTP, from folders that share nothing
with the portal but the URL.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from portal.integrations.prometheus_local import free_port
from tests.conftest import REPO

START_SECONDS = 60.0
STOP_SECONDS = 30.0
TEMPLATE = "fastapi-service"


def copy_template(templates_dir: Path, name: str = TEMPLATE) -> Path:
    """Copy one bundled template into ``templates_dir`` (so a test may bump its version)."""
    caches = shutil.ignore_patterns("__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache")
    return Path(shutil.copytree(REPO / "templates" / name, templates_dir / name, ignore=caches))


def bump_version(template: Path, version: str) -> None:
    """Release ``template`` as ``version`` (what the next start of the portal publishes)."""
    manifest = template / "template.yaml"
    lines = manifest.read_text(encoding="utf-8").splitlines()
    bumped = [f"version: {version}" if line.startswith("version:") else line for line in lines]
    assert bumped != lines, "template.yaml has no version line"
    manifest.write_text("\n".join(bumped) + "\n", encoding="utf-8")


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without PORTAL_* settings, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PORTAL_")}
    return env | extra


def tool_env(home: Path) -> dict[str, str]:
    """An environment for git and Copier run as a colleague would: own home, no user config."""
    home.mkdir(parents=True, exist_ok=True)
    return clean_env(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Colleague",
        GIT_AUTHOR_EMAIL="colleague@example.com",
        GIT_COMMITTER_NAME="Colleague",
        GIT_COMMITTER_EMAIL="colleague@example.com",
        GIT_TERMINAL_PROMPT="0",
    )


@dataclass
class ServedPortal:
    """One ``portal serve`` process: its port and its log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    data_dir: Path

    @property
    def url(self) -> str:
        """Return the portal's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Return what the portal logged so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request with ``target`` exactly as given (no URL normalisation)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.putrequest(method, target, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            sized = {"Content-Length", "Transfer-Encoding"} & set(headers or {})
            if body is not None and not sized:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def _healthy(portal: ServedPortal) -> bool:
    try:
        return portal.request("GET", "/healthz")[0] == 200
    except OSError:
        return False


@contextmanager
def served_portal(
    data_dir: Path, templates_dir: Path, port: int | None = None, **settings: str
) -> Iterator[ServedPortal]:
    """Run ``portal serve`` on ``data_dir`` and ``templates_dir`` until the block ends.

    ``settings`` are more ``PORTAL_*`` variables (``max_body_bytes="1024"``).
    """
    port = port or free_port()
    log = data_dir.parent / f"serve-{port}.log"
    env = clean_env(
        PORTAL_DATA_DIR=str(data_dir),
        PORTAL_TEMPLATES_DIR=str(templates_dir),
        PORTAL_CATALOG_PATHS="",
        PORTAL_GITOPS_SEED_DIR=str(REPO / "gitops-repo"),
        PORTAL_SECRET_KEY="test-secret-key",
        PORTAL_RUN_WORKER="false",
        # No local Prometheus: nothing here reads the SLO pages.
        PORTAL_PROMETHEUS_URL="http://127.0.0.1:9",
        PORTAL_MLFLOW_URL="http://127.0.0.1:9",  # no local MLflow: not what these tests are about
        **{f"PORTAL_{name.upper()}": value for name, value in settings.items()},
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal", "serve", "--port", str(port)],
            cwd=data_dir.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    portal = ServedPortal(process, port, log, data_dir)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _healthy(portal):
            assert process.poll() is None, f"portal serve exited: {portal.output()}"
            assert time.monotonic() < deadline, f"portal serve did not start: {portal.output()}"
            time.sleep(0.1)
        yield portal
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
