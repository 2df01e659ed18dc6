"""SLO overview benchmark (issue 5): the overview page for 200 SLOs against a real Prometheus.

Run ``.venv/bin/python benchmarks/slo_pages.py [--services 40 --slos-per-service 5]``.
A synthetic exporter serves request counters for every service (some burning their
budget, one failing hard), a local Prometheus (Debian's ``prometheus``, started here,
scrape and rule evaluation every 2 s) loads the rules the portal generates for them,
and once every SLO has data the portal's pages are timed through its ASGI app:

- ``/slos`` uncached: every request runs the overview's fixed instant queries (the
  snapshot cache disabled), joins 200 SLOs and renders the page. Target p95 < 150 ms;
- ``/slos`` as served: with the portal's few-second snapshot cache;
- the htmx refresh of the table, ``/api/slos``, and a detail page (two range queries);
- building the SLO index (specs read and resolved), which is cached for 30 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

# Run as a script (`python benchmarks/slo_pages.py`): make the repository importable.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.timing import percentile, timed  # noqa: E402
from portal.app import create_app  # noqa: E402
from portal.config import Settings  # noqa: E402
from portal.integrations.prometheus import PrometheusClient  # noqa: E402
from portal.integrations.prometheus_local import (  # noqa: E402
    LocalPrometheus,
    ScrapeTarget,
    find_prometheus,
)
from portal.slo.burn import SNAPSHOT_QUERIES  # noqa: E402
from portal.slo.runtime import SLORuntime  # noqa: E402
from portal.slo.store import build_slo_index  # noqa: E402
from tests.loopback_http import serving  # noqa: E402

TARGET_P95_MS = 150.0
OBJECTIVES = (99.9, 99.5, 99.0, 99.95, 95.0)


def spec(service: str, slos: int, owner: str) -> str:
    """One service's Sloth spec with ``slos`` SLOs on the exporter's counters."""
    lines = [
        'version: "prometheus/v1"',
        f'service: "{service}"',
        "labels:",
        f'  owner: "{owner}"',
        "slos:",
    ]
    for index in range(slos):
        selector = f'service="{service}",slo="s{index}"'
        lines += [
            f'  - name: "slo-{index}"',
            f"    objective: {OBJECTIVES[index % len(OBJECTIVES)]}",
            "    sli:",
            "      events:",
            "        error_query: sum(rate(bench_requests_total{"
            + selector
            + ',code="500"}[{{.window}}]))',
            f"        total_query: sum(rate(bench_requests_total{{{selector}}}[{{{{.window}}}}]))",
            "    alerting:",
            f"      name: Bench{index}",
        ]
    return "\n".join(lines) + "\n"


class Exporter:
    """Counters for every SLO, incremented ten times a second with per-SLO error rates."""

    def __init__(self, services: int, slos: int) -> None:
        self.registry = CollectorRegistry()
        self.counter = Counter(
            "bench_requests",
            "Synthetic requests.",
            ["service", "slo", "code"],
            registry=self.registry,
        )
        self.rates: list[tuple[str, str, float]] = []
        for number in range(services):
            for index in range(slos):
                service, slo = f"svc-{number:03d}", f"s{index}"
                # Mostly healthy; every 7th SLO burns, service 0 fails hard.
                errors = 0.2 if number == 0 else (0.004 if (number + index) % 7 == 0 else 0.0)
                self.rates.append((service, slo, errors))
                for code in ("200", "500"):
                    self.counter.labels(service=service, slo=slo, code=code)
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.handler = Handler
        self.port = 0  # set while it runs
        self.stop = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def tick(self) -> None:
        while not self.stop.wait(0.1):
            for service, slo, errors in self.rates:
                self.counter.labels(service=service, slo=slo, code="200").inc(100 * (1 - errors))
                self.counter.labels(service=service, slo=slo, code="500").inc(100 * errors)

    @contextmanager
    def running(self) -> Iterator[Exporter]:
        ticker = threading.Thread(target=self.tick, daemon=True)
        with serving(self.handler, name="bench-exporter") as self.port:
            ticker.start()
            try:
                yield self
            finally:
                self.stop.set()
                ticker.join(timeout=5)


def row(name: str, seconds: list[float], target: float | None = None) -> None:
    samples = [value * 1000 for value in seconds]
    p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
    verdict = ""
    if target is not None:
        verdict = f"p95 < {target:g} ms: {'PASS' if p95 < target else 'FAIL'}"
    print(f"{name:<44} {p50:8.1f} {p95:8.1f} {max(samples):8.1f}  {verdict}")


def wait_for_data(url: str, expected: int, timeout: float) -> float:
    client = PrometheusClient(url, timeout=10)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        burns = client.query("slo:current_burn_rate:ratio")
        remaining = client.query("slo:period_error_budget_remaining:ratio")
        if len(burns) >= expected and len(remaining) >= expected:
            return time.monotonic() - started
        time.sleep(1)
    raise SystemExit(f"Prometheus did not record {expected} SLOs within {timeout:g} s")


def ok(client: TestClient, path: str, **headers: str) -> Callable[[], Any]:
    def call() -> None:
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}")

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=40)
    parser.add_argument("--slos-per-service", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    total = args.services * args.slos_per_service
    if find_prometheus() is None:
        raise SystemExit("prometheus is not installed (Debian: apt-get install prometheus)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {platform.platform()}; ")
    print(f"Python {platform.python_version()}; {total} SLOs ({args.services} services)")
    with tempfile.TemporaryDirectory(prefix="slo-bench-") as tmp:
        root = Path(tmp)
        specs = root / "specs"
        specs.mkdir()
        for number in range(args.services):
            text = spec(f"svc-{number:03d}", args.slos_per_service, f"team-{number % 8}")
            (specs / f"svc-{number:03d}.yaml").write_text(text, encoding="utf-8")
        start = time.perf_counter()
        slo_index = build_slo_index([specs])
        index_ms = (time.perf_counter() - start) * 1000
        if len(slo_index.entries) != total:
            raise SystemExit(f"specs did not resolve: {slo_index.problems}")
        exporter = Exporter(args.services, args.slos_per_service)
        with exporter.running():
            prometheus = LocalPrometheus(
                root / "prometheus",
                scrape=[ScrapeTarget("bench", (exporter.address,))],
                rules=slo_index.rule_files(),
                scrape_interval="2s",
                evaluation_interval="2s",
            )
            with prometheus:
                waited = wait_for_data(prometheus.url, total, timeout=120)
                print(f"Prometheus {prometheus.url}: every SLO recorded after {waited:.0f} s")
                settings = Settings(
                    data_dir=root / "var",
                    catalog_paths=[],
                    secret_key="bench",
                    gitops_seed_dir=REPO / "gitops-repo",
                    templates_dir=REPO / "templates",
                    run_worker=False,
                    prometheus_url=prometheus.url,
                    slo_paths=[str(specs)],
                )
                with TestClient(create_app(settings)) as client:
                    measure(client, args.runs, total, index_ms)


def measure(client: TestClient, runs: int, total: int, index_ms: float) -> None:
    runtime: SLORuntime = client.app.state.slo  # type: ignore[attr-defined]
    overview = runtime.overview()
    shown = sum(row.has_data for row in overview.rows)
    print(
        f"overview: {len(overview.rows)} SLOs, {shown} with data, {overview.paging} paging, "
        f"{overview.ticketing} ticketing; {len(SNAPSHOT_QUERIES)} instant queries per snapshot"
    )
    if len(overview.rows) != total or shown != total:
        raise SystemExit(f"expected {total} SLOs with data, got {len(overview.rows)} ({shown})")
    print(f"\n{'measure (ms)':<44} {'p50':>8} {'p95':>8} {'max':>8}")
    cache_seconds = runtime.snapshot_cache.seconds
    runtime.snapshot_cache.seconds = 0
    row("GET /slos, uncached (6 queries + join)", timed(ok(client, "/slos"), runs), TARGET_P95_MS)
    row("  of which the snapshot (6 queries, join)", timed(runtime.snapshot, runs))
    row(
        "GET /slos htmx refresh, uncached",
        timed(ok(client, "/slos", **{"HX-Request": "true"}), runs),
    )
    row("GET /api/slos, uncached", timed(ok(client, "/api/slos"), runs))
    first = overview.rows[0].sloth_id
    row(f"GET /slos/{first} (2 range queries)", timed(ok(client, f"/slos/{first}"), runs // 4))
    runtime.snapshot_cache.seconds = cache_seconds
    row("GET /slos, as served (snapshot cached 5 s)", timed(ok(client, "/slos"), runs))
    runtime.slo_index_cache.seconds = 0
    row("SLO index build (specs, git, owners)", timed(runtime.slo_index, max(10, runs // 10)))
    print(f"{'first SLO index build (specs only)':<44} {index_ms:8.1f}")


if __name__ == "__main__":
    main()
