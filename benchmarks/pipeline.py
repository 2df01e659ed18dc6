"""Pipeline benchmark (issue 11): scaffolds over HTTP against a real `portal serve`.

Run ``.venv/bin/python benchmarks/pipeline.py [--runs 20] [--burst 20]`` (checkov from
``make tools``). In one run, on one data folder:

1. a ``portal serve`` subprocess on 127.0.0.1 (trusted-header sign-in, the real worker
   stages, real checkov, kubectl and promtool; no local Prometheus) gets one untimed
   scaffold, so the Copier worker, the snapshots and the warm checkov are ready;
2. **idle**: ``--runs`` scaffolds one after another, each submitted when the previous one
   is ready: ``POST /api/scaffold`` -> branch pushed (the change leaves ``rendering``) ->
   checks done (``ready``), seen by polling ``GET /api/changes/{id}`` (one thread polls
   every unfinished change in turn, then sleeps 10 ms);
3. **back to back**: ``--runs`` scaffolds, each submitted as soon as the previous one is
   pushed, so its render meets the previous change's checks (the case that took 3.2 s);
4. **burst**: ``--burst`` scaffolds submitted at once from as many threads, timed until
   all are pushed and until all are checked;
5. the CLI baseline of :mod:`benchmarks.scaffold` (``copier copy`` + ``git add`` +
   ``git commit``) on the same published template, with the portal stopped.

The load average and the core count are printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from portal.cli import initialise
from portal.config import Settings
from portal.integrations.checkov import find_checkov

# Run as a script (`python benchmarks/pipeline.py`): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.scaffold import cli_runs
from benchmarks.timing import percentile

REPO = Path(__file__).resolve().parent.parent
HEADERS = {"X-Forwarded-User": "ada.lovelace", "X-Forwarded-Groups": "platform-team"}
POLL_SECONDS = 0.01  # between rounds of polling
TIMEOUT_SECONDS = 600.0
MAKE_TOOLS_CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"
CHECKS_DETAIL = re.compile(r"in ([0-9.]+) s$")


@dataclass
class Timed:
    """One scaffold: seconds from submit to pushed and to ready, and the check stage's own time."""

    change_id: str
    submitted: float
    accepted: float = 0.0  # the 202 of POST /api/scaffold
    pushed: float | None = None
    ready: float | None = None
    checks: float | None = None  # the check stage's time, from the change's "checks" step
    status: str = ""
    errors: list[str] = field(default_factory=list)
    was_pushed: threading.Event = field(default_factory=threading.Event)
    is_done: threading.Event = field(default_factory=threading.Event)


class Watcher:
    """One thread that polls every watched change in turn, so polling adds one request at a time.

    Each change is polled once per round; a round sleeps ``POLL_SECONDS`` and takes a few
    milliseconds per watched change, which bounds the resolution of the times.
    """

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self._watched: list[Timed] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def watch(self, timed: Timed) -> Timed:
        with self._lock:
            self._watched.append(timed)
        return timed

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                watched = [timed for timed in self._watched if not timed.is_done.is_set()]
            for timed in watched:
                self._update(timed)
            time.sleep(POLL_SECONDS)

    def _update(self, timed: Timed) -> None:
        change: dict[str, Any] = self.client.get(f"/api/changes/{timed.change_id}").json()
        now = time.perf_counter()
        timed.status = change["status"]
        if timed.pushed is None and change["status"] != "rendering":
            timed.pushed = now - timed.submitted
            timed.was_pushed.set()
        if change["status"] in ("ready", "failed"):
            timed.ready = now - timed.submitted
            timed.errors = [change["error"]] if change["error"] else []
            for step in change["steps"]:
                found = CHECKS_DETAIL.search(step.get("detail", ""))
                if step["name"] == "checks" and found:
                    timed.checks = float(found.group(1))
            timed.is_done.set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_portal(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    portal = subprocess.Popen(
        [str(Path(sys.executable).parent / "portal"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return portal
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    portal.kill()
    sys.exit("portal serve did not answer /healthz within 60 s")


def submit(client: httpx.Client, watcher: Watcher, name: str) -> Timed:
    body = {
        "template": "fastapi-service",
        "answers": {"name": name, "owner": "platform-team", "description": "Benchmark"},
    }
    started = time.perf_counter()
    response = client.post("/api/scaffold", json=body)
    if response.status_code != 202:
        sys.exit(f"scaffold {name}: {response.status_code} {response.text}")
    accepted = time.perf_counter() - started
    return watcher.watch(Timed(response.json()["id"], started, accepted))


def wait(event: threading.Event, timed: Timed) -> Timed:
    if not event.wait(TIMEOUT_SECONDS):
        sys.exit(f"change {timed.change_id} did not finish within {TIMEOUT_SECONDS:g} s")
    return timed


def idle_runs(client: httpx.Client, watcher: Watcher, runs: int, prefix: str) -> list[Timed]:
    results = []
    for index in range(runs):
        timed = submit(client, watcher, f"{prefix}-{index:02d}")
        results.append(wait(timed.is_done, timed))
    return results


def back_to_back_runs(client: httpx.Client, watcher: Watcher, runs: int) -> list[Timed]:
    results = []
    for index in range(runs):
        timed = submit(client, watcher, f"b2b-{index:02d}")
        results.append(wait(timed.was_pushed, timed))
    return [wait(timed.is_done, timed) for timed in results]


def burst(client: httpx.Client, watcher: Watcher, count: int) -> tuple[list[Timed], float, float]:
    """Submit ``count`` scaffolds at once; return them, all-pushed and all-ready seconds."""
    barrier = threading.Barrier(count)
    began = time.perf_counter()

    def one(index: int) -> Timed:
        barrier.wait()
        return submit(client, watcher, f"burst-{index:02d}")

    with ThreadPoolExecutor(max_workers=count) as pool:
        results = [wait(timed.is_done, timed) for timed in pool.map(one, range(count))]
    pushed = max(r.submitted + (r.pushed or 0) for r in results) - began
    ready = max(r.submitted + (r.ready or 0) for r in results) - began
    return results, pushed, ready


def row(label: str, values: list[float], unit: Callable[[float], str]) -> str:
    fifty, ninety_five = statistics.median(values), percentile(values, 0.95)
    return f"{label:<58}{unit(fifty):>10}{unit(ninety_five):>10}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=20)
    args = parser.parse_args()
    configured = os.environ.get("PORTAL_CHECKOV_PATH")
    checkov = find_checkov(Path(configured) if configured else MAKE_TOOLS_CHECKOV)
    if checkov is None:
        sys.exit("checkov not found: run `make tools` (or set PORTAL_CHECKOV_PATH)")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        values = {
            "PORTAL_DATA_DIR": str(Path(tmp) / "var"),
            "PORTAL_CATALOG_PATHS": str(REPO / "catalog"),
            "PORTAL_GITOPS_SEED_DIR": str(REPO / "gitops-repo"),
            "PORTAL_TEMPLATES_DIR": str(REPO / "templates"),
            "PORTAL_ERROR_BUDGET_DIR": str(REPO / "sre" / "error-budgets"),
            "PORTAL_SECRET_KEY": "bench",
            "PORTAL_AUTH_MODE": "trusted-header",
            "PORTAL_CHECKOV_PATH": str(checkov),
            "PORTAL_PROMETHEUS_URL": "http://127.0.0.1:9",  # no local Prometheus
            "PORTAL_MLFLOW_URL": "http://127.0.0.1:9",  # nor MLflow
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")} | values
        settings = Settings(
            data_dir=Path(values["PORTAL_DATA_DIR"]),
            catalog_paths=[values["PORTAL_CATALOG_PATHS"]],
            gitops_seed_dir=REPO / "gitops-repo",
            templates_dir=REPO / "templates",
            secret_key="bench",
        )
        initialise(settings, gitops=True)
        port = free_port()
        portal = start_portal(env, port)
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers=HEADERS, timeout=60
            ) as client:
                watcher = Watcher(client)
                try:
                    idle_runs(client, watcher, 1, "warm-up")
                    idle = idle_runs(client, watcher, args.runs, "idle")
                    back_to_back = back_to_back_runs(client, watcher, args.runs)
                    burst_results, all_pushed, all_ready = burst(client, watcher, args.burst)
                finally:
                    watcher.close()
        finally:
            portal.send_signal(signal.SIGTERM)
            portal.wait(60)
        cli = cli_runs(settings, args.runs)
    load_after = os.getloadavg()
    report(args, idle, back_to_back, (burst_results, all_pushed, all_ready), cli)
    print(
        f"cores: {os.cpu_count()}; load average before {load_before[0]:.2f}, after "
        f"{load_after[0]:.2f} (1 min)"
    )


def report(
    args: argparse.Namespace,
    idle: list[Timed],
    back_to_back: list[Timed],
    bursts: tuple[list[Timed], float, float],
    cli: list[float],
) -> None:
    burst_results, all_pushed, all_ready = bursts
    failed = [t for t in idle + back_to_back + burst_results if t.status != "ready"]
    print(f"runs: {args.runs} idle, {args.runs} back to back, a burst of {args.burst}")
    print(f"{'measure':<58}{'p50':>10}{'p95':>10}")

    def pushed(series: list[Timed]) -> list[float]:
        return [t.pushed or 0 for t in series]

    def checks(series: list[Timed]) -> list[float]:
        return [t.checks or 0 for t in series]

    def pushed_to_ready(series: list[Timed]) -> list[float]:
        return [(t.ready or 0) - (t.pushed or 0) for t in series]

    lines = [
        row("idle: submit -> 202", [t.accepted for t in idle], ms),
        row("idle: submit -> branch pushed", pushed(idle), ms),
        row("idle: branch pushed -> checks done", pushed_to_ready(idle), secs),
        row("idle: check stage per change (the change's own step)", checks(idle), secs),
        row("idle: submit -> checks done", [t.ready or 0 for t in idle], secs),
        row("back to back: submit -> branch pushed", pushed(back_to_back), ms),
        row("back to back: check stage per change", checks(back_to_back), secs),
        row(f"burst of {args.burst}: submit -> 202", [t.accepted for t in burst_results], ms),
        row(f"burst of {args.burst}: submit -> branch pushed", pushed(burst_results), ms),
        row(f"burst of {args.burst}: check stage per change", checks(burst_results), secs),
        row("CLI: copier copy + git add + git commit", cli, ms),
    ]
    print("\n".join(lines))
    print(
        f"burst of {args.burst}: all pushed after {all_pushed:.2f}s, all checked after "
        f"{all_ready:.2f}s"
    )
    cli50 = statistics.median(cli)
    print(
        f"ratio portal/CLI (p50): idle {statistics.median(pushed(idle)) / cli50:.2f}, "
        f"back to back {statistics.median(pushed(back_to_back)) / cli50:.2f}"
    )
    targets = [
        (f"burst of {args.burst}: all pushed within 5 s", all_pushed < 5),
        (f"burst of {args.burst}: all checked within 60 s", all_ready < 60),
        (
            "a single scaffold's checks under 3 s (p50)",
            statistics.median(pushed_to_ready(idle)) < 3,
        ),
        ("no change failed", not failed),
    ]
    for label, ok in targets:
        print(f"{label:<58} {'PASS' if ok else 'FAIL'}")
    for timed in failed:
        print(f"failed: {timed.status} {timed.errors}")


if __name__ == "__main__":
    main()
