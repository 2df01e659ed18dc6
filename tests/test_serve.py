"""``portal serve`` as ``make run`` starts it: the default relative data dir, a live /slos.

A checkout-like folder (the repository's catalog, GitOps seed, templates and SRE specs,
linked) where ``portal init`` and ``portal serve`` run with no ``PORTAL_DATA_DIR``: the
data lands in ``./var``, the local Prometheus runs inside ``var/prometheus`` and must find
its configuration there, scrape the portal and evaluate the rules of the portal's own
SLOs. Then the portal is stopped the ways people and service managers stop it (SIGTERM,
Ctrl-C's SIGINT, SIGKILL) and its Prometheus must not outlive it. With `make tools`' MLflow
in the folder (``.tools/mlflow``), the portal runs its model registry the same way.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from portal.integrations.local_server import group_alive
from portal.integrations.processes import process_alive
from portal.integrations.prometheus_local import free_port
from tests.conftest import REPO, require_tool

pytestmark = pytest.mark.integration
# Scrape and rule evaluation every 15 s (serve's default): two scrapes, then an evaluation.
LIVE_BURN_SECONDS = 150.0
START_SECONDS = 120.0
STOP_SECONDS = 30.0
CHECKOUT = ("catalog", "gitops-repo", "templates", "sre")


def env_without_settings() -> dict[str, str]:
    """The test's environment minus every PORTAL_* setting: the defaults apply."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PORTAL_")}
    # A Prometheus someone runs on 9090 must not make the local one wander; the worker
    # thread has nothing to do here.
    return env | {"PORTAL_PROMETHEUS_PORT": "0", "PORTAL_RUN_WORKER": "false"}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like the repository, after ``portal init`` with the defaults."""
    require_tool("prometheus")
    folder = tmp_path_factory.mktemp("checkout")
    for name in CHECKOUT:
        (folder / name).symlink_to(REPO / name, target_is_directory=True)
    done = subprocess.run(
        [sys.executable, "-m", "portal", "init"],
        cwd=folder,
        env=env_without_settings(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (folder / "var" / "portal.db").is_file()
    return folder


@dataclass
class Serving:
    """One ``portal serve`` subprocess and what it logs."""

    process: subprocess.Popen[str]
    port: int
    log: Path

    def get(self, path: str) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path, headers={"Accept": "text/html"})
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, signum: signal.Signals) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=STOP_SECONDS)


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds:g} s waiting for {what}"
        time.sleep(0.5)


def prometheus_pid(checkout: Path) -> int:
    """The local Prometheus of ``checkout``, found where the portal leaves its pid."""
    pid = int((checkout / "var" / "prometheus" / "prometheus.pid").read_text())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert Path(cmdline[0].decode()).name == "prometheus", cmdline
    return pid


@pytest.fixture
def serve(checkout: Path, tmp_path: Path) -> Iterator[Callable[[], Serving]]:
    """Start ``portal serve`` in ``checkout`` and wait until it and its Prometheus are up."""
    started: list[Serving] = []

    def start() -> Serving:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "portal", "serve", "--port", str(port)],
                cwd=checkout,
                env=env_without_settings(),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        serving = Serving(process, port, log)
        started.append(serving)

        def ready() -> bool:
            assert process.poll() is None, f"portal serve exited: {serving.output()}"
            try:
                return serving.get("/healthz")[0] == 200
            except OSError:
                return False

        wait_until(ready, START_SECONDS, "portal serve to answer /healthz")
        assert "Local Prometheus at http://127.0.0.1:" in serving.output(), serving.output()
        return serving

    yield start
    for serving in started:  # the test failed half-way: leave nothing running
        if serving.process.poll() is None:
            serving.process.kill()
            serving.process.wait()
    pid_file = checkout / "var" / "prometheus" / "prometheus.pid"
    if pid_file.exists() and process_alive(pid := int(pid_file.read_text())):
        os.kill(pid, signal.SIGKILL)


def availability(serving: Serving, slo: str = "portal-requests-availability") -> dict[str, Any]:
    status, body = serving.get(f"/api/slos/{slo}")
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


def burn_cells(html: str, sloth_id: str) -> dict[str, str]:
    """The burn rate per window of one row of the /slos table (``data-value``)."""
    row = re.search(rf'<tr data-sloth-id="{re.escape(sloth_id)}">(.*?)</tr>', html, re.S)
    assert row, f"no row for {sloth_id}"
    return dict(re.findall(r'data-window="([^"]+)" data-value="([^"]*)"', row.group(1)))


def gone(pid: int) -> Callable[[], bool]:
    return lambda: not process_alive(pid)


def test_make_run_defaults_show_live_burn_and_sigterm_stops_prometheus(
    serve: Callable[[], Serving], checkout: Path
) -> None:
    portal = serve()
    # The data dir was relative; everything the children were given is not.
    config = checkout / "var" / "prometheus" / "prometheus.yml"
    assert config.is_file()
    pid = prometheus_pid(checkout)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    assert f"--config.file={config}" in cmdline

    for path in ("/catalog", "/slos", "/healthz", "/catalog?kind=Group"):
        assert portal.get(path)[0] == 200

    def live() -> bool:
        # Each SLO's recording rules are a group of their own, evaluated on its own tick.
        return all(
            availability(portal, slo)["current_burn"] is not None
            for slo in ("portal-requests-availability", "portal-requests-latency")
        )

    wait_until(live, LIVE_BURN_SECONDS, "a burn rate of the portal's two SLOs")
    slo = availability(portal)
    # Nothing failed: a real, zero burn on every window (not "no data").
    assert slo["current_burn"] == pytest.approx(0)
    assert slo["burn"]["5m"] == pytest.approx(0)
    assert slo["alert"] == "none"
    status, html = portal.get("/slos")
    assert status == 200
    assert "No Prometheus is configured" not in html
    cells = burn_cells(html, "portal-requests-availability")
    assert float(cells["5m"]) == pytest.approx(0), cells
    assert float(burn_cells(html, "portal-requests-latency")["5m"]) >= 0

    assert portal.stop(signal.SIGTERM) == 0
    wait_until(gone(pid), STOP_SECONDS, "the local Prometheus to stop after SIGTERM")
    assert "Local Prometheus stopped." in portal.output()
    assert not (checkout / "var" / "prometheus" / "prometheus.pid").exists()


def test_ctrl_c_stops_prometheus_and_a_kill_leaves_it_to_the_next_start(
    serve: Callable[[], Serving], checkout: Path
) -> None:
    killed = serve()
    orphan = prometheus_pid(checkout)
    killed.stop(signal.SIGKILL)
    assert process_alive(orphan)  # nobody could stop it: the next start must

    portal = serve()
    assert not process_alive(orphan)
    pid = prometheus_pid(checkout)
    assert pid != orphan

    assert portal.stop(signal.SIGINT) == 0, portal.output()  # Ctrl-C: a requested stop
    wait_until(gone(pid), STOP_SECONDS, "the local Prometheus to stop after SIGINT")
    assert "Local Prometheus stopped." in portal.output()
    assert "Traceback" not in portal.output() and "Aborted" not in portal.output()


@pytest.fixture
def mlflow_tool(checkout: Path) -> Iterator[Path]:
    """`make tools`' MLflow where `make run` finds it (``.tools/mlflow``), for one test."""
    installed = require_tool("mlflow")
    link = checkout / ".tools" / "mlflow" / "bin" / "mlflow"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(installed)
    yield link
    link.unlink()  # the other tests here serve without it
    pid_file = checkout / "var" / "mlflow" / "mlflow.pid"
    if pid_file.exists() and group_alive(pid := int(pid_file.read_text())):
        os.killpg(pid, signal.SIGKILL)  # the test failed half-way


def test_serve_runs_the_local_mlflow_with_its_data_in_the_data_dir_until_sigterm(
    serve: Callable[[], Serving], checkout: Path, mlflow_tool: Path
) -> None:
    portal = serve()
    found = re.search(
        r"Local MLflow at (http://127\.0\.0\.1:(\d+)) \(data in (\S+)\)", portal.output()
    )
    assert found, portal.output()
    folder = checkout / "var" / "mlflow"
    assert found[3] == str(folder)
    pid = int((folder / "mlflow.pid").read_text())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    assert f"--backend-store-uri=sqlite:///{folder / 'mlflow.db'}" in cmdline
    assert f"--artifacts-destination={folder / 'artifacts'}" in cmdline
    connection = http.client.HTTPConnection("127.0.0.1", int(found[2]), timeout=10)
    try:
        connection.request("GET", "/api/2.0/mlflow/registered-models/search")
        response = connection.getresponse()
        assert response.status == 200 and "registered_models" not in response.read().decode()
    finally:
        connection.close()

    assert portal.stop(signal.SIGTERM) == 0
    wait_until(lambda: not group_alive(pid), STOP_SECONDS, "the local MLflow to stop")
    assert "Local MLflow stopped." in portal.output()
    assert not (folder / "mlflow.pid").exists()
    assert (folder / "mlflow.db").is_file()
