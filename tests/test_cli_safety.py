"""The CLI keeps credentials out of its output; one ``portal serve`` per data folder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from portal.cli import app
from portal.integrations.gitops_bootstrap import seed_bare_remote
from portal.integrations.processes import process_alive
from portal.integrations.prometheus_local import find_prometheus, free_port
from tests.conftest import REPO
from tests.loopback_http import serving
from tests.templates.service_process import status_of

TOKEN = "glpat-S3cr3tT0kenValue"
runner = CliRunner()


@pytest.fixture
def portal_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean PORTAL_* environment on a fresh data folder; return the folder."""
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "var"
    monkeypatch.setenv("PORTAL_DATA_DIR", str(data_dir))
    monkeypatch.setenv("PORTAL_CATALOG_PATHS", "")
    monkeypatch.setenv("PORTAL_GITOPS_SEED_DIR", str(REPO / "gitops-repo"))
    return data_dir


def dumb_http_remote(folder: Path) -> type[SimpleHTTPRequestHandler]:
    """A bare GitOps repository served read-only over git's "dumb" HTTP protocol."""
    seed_bare_remote(folder, REPO / "gitops-repo", "main", ("Seed", "seed@example.org"))
    subprocess.run(["git", "--git-dir", str(folder), "update-server-info"], check=True)

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    return Handler


def test_init_never_prints_the_gitops_token(
    portal_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with serving(dumb_http_remote(tmp_path / "remote.git")) as port:
        monkeypatch.setenv("PORTAL_GITOPS_REMOTE", f"http://oauth2:{TOKEN}@127.0.0.1:{port}/")
        result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert f"GitOps repository: http://***@127.0.0.1:{port}/ (branch main)" in result.output
    assert TOKEN not in result.output and "oauth2" not in result.output


def test_init_against_an_unreachable_remote_never_prints_the_token(
    portal_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 (discard) on loopback refuses at once.
    monkeypatch.setenv("PORTAL_GITOPS_REMOTE", f"https://ci:{TOKEN}@127.0.0.1:9/platform.git")
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 1
    assert "GitOps repository:" in result.output
    assert TOKEN not in result.output.replace("\n", ""), result.output


def serve_env(data_dir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PORTAL_")}
    return env | {
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_CATALOG_PATHS": "",
        "PORTAL_GITOPS_SEED_DIR": str(REPO / "gitops-repo"),
        "PORTAL_RUN_WORKER": "false",
        "PORTAL_PROMETHEUS_PORT": "0",
        "PORTAL_MLFLOW_URL": "http://127.0.0.1:9",  # no local MLflow: 10-20 s per serve
        "PORTAL_SECRET_KEY": "test-secret-key",
    }


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Path], tuple[subprocess.Popen[str], int, Path]]]:
    """Start ``portal serve`` subprocesses on a free port; stop every one at the end."""
    started: list[subprocess.Popen[str]] = []
    data_dirs: list[Path] = []

    def start(data_dir: Path) -> tuple[subprocess.Popen[str], int, Path]:
        data_dirs.append(data_dir)
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "portal", "serve", "--port", str(port)],
                cwd=REPO,
                env=serve_env(data_dir),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        started.append(process)
        return process, port, log

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for data_dir in data_dirs:  # the test failed: leave no local Prometheus behind
        if (pid := prometheus_pid(data_dir)) is not None and process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def started_serving(process: subprocess.Popen[str], port: int, log: Path) -> Callable[[], bool]:
    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"portal serve exited: {log.read_text()}")
        return status_of(port, "/healthz") == 200

    return ready


def prometheus_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "prometheus" / "prometheus.pid").read_text())
    except (OSError, ValueError):
        return None


def local_prometheus_url(log: Path) -> str | None:
    found = re.search(r"Local Prometheus at (http://\S+)", log.read_text())
    return found[1] if found else None


def test_a_second_serve_on_the_same_data_folder_is_refused(
    serve: Callable[[Path], tuple[subprocess.Popen[str], int, Path]], tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    first, port, log = serve(data_dir)
    wait_for(started_serving(first, port, log), 90, "the first portal")
    prometheus = local_prometheus_url(log)
    assert prometheus or find_prometheus() is None, log.read_text()

    second, _, second_log = serve(data_dir)
    second.wait(timeout=90)
    refusal = " ".join(second_log.read_text().split())
    assert second.returncode != 0
    assert f"the data folder {data_dir.resolve()} is in use by another portal" in refusal
    assert f"(pid {first.pid})" in refusal

    # The first one still serves, with its own Prometheus untouched.
    assert status_of(port, "/healthz") == 200
    if prometheus:
        assert status_of(int(prometheus.rsplit(":", 1)[1]), "/-/ready") == 200
        pid = prometheus_pid(data_dir)
        assert pid is not None and process_alive(pid)
        # Stopped as a service manager stops it, the portal stops its Prometheus too.
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        wait_for(lambda: not process_alive(pid), 15, "the local Prometheus to stop")


def test_a_killed_serve_leaves_no_stale_lock(
    serve: Callable[[Path], tuple[subprocess.Popen[str], int, Path]], tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    first, port, log = serve(data_dir)
    wait_for(started_serving(first, port, log), 90, "the first portal")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert not process_alive(first.pid)
    again, again_port, again_log = serve(data_dir)
    wait_for(started_serving(again, again_port, again_log), 90, "a portal after kill -9")
