"""Change page benchmark (issue 12): the air-quality scaffold's change page, size and load time.

Run ``.venv/bin/python benchmarks/change_page.py [--runs 30]``. A fresh data folder is
initialised (the repository's catalog, a local GitOps remote), the ``air-quality-monitor``
template is scaffolded through the portal's own pipeline (validate, render, commit, every
check), and the portal is then served by uvicorn in a subprocess. The change page is
requested over HTTP by a reviewer (trusted-header identity), ``--runs`` times after one
warm-up request, for:

- **after**: ``GET /reviews/<id>``, as served: vendored, minified, large and generated files
  collapsed (size and digest, "Show diff" loads one);
- **before**: ``GET /reviews/<id>?expand=all``, every file's diff on the page, as the page
  was before collapsing (same highlighting and rows);
- one collapsed file loaded on demand (``GET /reviews/<id>/files/<path>`` as htmx sends it).

The first request after the server started (git read, nothing cached) is reported apart.
``--page-only`` measures the plain page alone: run from an export of an older commit
(``git archive``), it gives the page as it was before.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: make the repository importable

from benchmarks.timing import percentile  # noqa: E402
from portal.app import create_app  # noqa: E402
from portal.cli import initialise  # noqa: E402
from portal.config import Settings  # noqa: E402
from portal.scaffold.jobs import run_pending  # noqa: E402

REVIEWER = {"X-Forwarded-User": "grace.hopper", "X-Forwarded-Groups": "platform-team"}
AUTHOR = {"X-Forwarded-User": "ada.lovelace", "X-Forwarded-Groups": "platform-team"}
ON_DEMAND = "services/munich-air/app/static/htmx.min.js"


def served_app() -> FastAPI:
    """The app uvicorn serves (``--factory``): settings from the ``PORTAL_*`` environment."""
    return create_app(Settings())


def environment(data_dir: Path) -> dict[str, str]:
    """The settings of both the set-up (in process) and the served portal (subprocess)."""
    return {
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_AUTH_MODE": "trusted-header",
        "PORTAL_CATALOG_PATHS": str(REPO / "catalog"),
        "PORTAL_SECRET_KEY": "change-page-benchmark",
        "PORTAL_GITOPS_SEED_DIR": str(REPO / "gitops-repo"),
        "PORTAL_TEMPLATES_DIR": str(REPO / "templates"),
        "PORTAL_RUN_WORKER": "false",
    }


def scaffold_air_quality() -> tuple[str, float]:
    """Create the change through the pipeline; return its id and the seconds it took."""
    settings = Settings()
    initialise(settings, gitops=True)
    with TestClient(create_app(settings)) as client:
        answers = {"name": "munich-air", "owner": "platform-team"}
        body = {"template": "air-quality-monitor", "answers": answers}
        started = time.perf_counter()
        created = client.post("/api/scaffold", json=body, headers=AUTHOR)
        created.raise_for_status()
        run_pending(client.app.state.scaffold.context)  # type: ignore[attr-defined]
        change = client.get(f"/api/changes/{created.json()['id']}").json()
        if change["status"] != "ready":
            raise SystemExit(f"the change is {change['status']}, not ready: {change}")
        return str(change["id"]), time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str, headers: dict[str, str]) -> tuple[float, int, int]:
    """GET ``path``; return seconds until the whole body arrived, its bytes and the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        connection.request("GET", path, headers={"Accept": "text/html", **headers})
        response = connection.getresponse()
        body = response.read()
        return time.perf_counter() - started, len(body), response.status
    finally:
        connection.close()


def wait_healthy(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"uvicorn exited with {server.returncode}")
        try:
            if get(port, "/healthz", {})[2] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the portal did not answer /healthz within 60 s")


def measure(port: int, path: str, headers: dict[str, str], runs: int) -> dict[str, float]:
    first, size, status = get(port, path, headers)
    if status != 200:
        raise SystemExit(f"GET {path} answered {status}")
    samples = [get(port, path, headers)[0] for _ in range(runs)]
    return {
        "bytes": size,
        "first_ms": first * 1000,
        "p50_ms": statistics.median(samples) * 1000,
        "p95_ms": percentile(samples, 0.95) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--page-only", action="store_true", help="only GET /reviews/<id>")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="change-page-bench-") as scratch:
        env = environment(Path(scratch) / "var")
        os.environ.update(env)
        change_id, seconds = scaffold_air_quality()
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "benchmarks.change_page:served_app",
        ]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        server = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env})
        try:
            wait_healthy(port, server)
            page = f"/reviews/{change_id}"
            results = {"change page": measure(port, page, REVIEWER, args.runs)}
            if not args.page_only:
                expanded = f"{page}?expand=all"
                results["?expand=all"] = measure(port, expanded, REVIEWER, args.runs)
                on_demand = REVIEWER | {"HX-Request": "true"}
                url = f"{page}/files/{ON_DEMAND}"
                results["one file on demand"] = measure(port, url, on_demand, args.runs)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"scaffold of air-quality-monitor through the pipeline: {seconds:.1f} s")
    print(f"{args.runs} requests each over HTTP (uvicorn subprocess), after one warm-up request")
    print(f"{'page':<24}{'bytes':>11}{'first ms':>10}{'p50 ms':>9}{'p95 ms':>9}")
    for name, row in results.items():
        print(
            f"{name:<24}{row['bytes']:>11,.0f}{row['first_ms']:>10.1f}"
            f"{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}"
        )


if __name__ == "__main__":
    main()
