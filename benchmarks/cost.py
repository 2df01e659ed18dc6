"""Cost pages benchmark (issue 13): ``/cost`` for 5, 50 and 500 measured services.

Run ``.venv/bin/python benchmarks/cost.py [--sizes 5,50,500 --runs 50 --cold-runs 3]``.
For each size, a real Prometheus (Debian's ``prometheus``) holds 61 days of hourly
kube-state-metrics and cAdvisor series for that many services (one pod each, in cluster
``prod``), written as OpenMetrics and turned into TSDB blocks by ``promtool tsdb
create-blocks-from openmetrics`` (``benchmarks/cost_history.py``). The portal is served by
uvicorn in a subprocess (a free port) with the cost runtime ``create_app`` builds from the
settings (``PORTAL_PROMETHEUS_URL`` pointing at that Prometheus, default timeouts); its clock
is fixed at ``NOW`` so the history ends "today". The catalog holds every service as a
Component owned by one of ten teams. Over HTTP:

- ``/healthz``: the baseline (a database ping through the same middleware);
- the first load, in the background: the measured days forgotten (``/bench/forget-cost``,
  a route of this script's app), ``/cost`` answers at once with the estimate and the
  loading note, and the time until the refresh ends (``/bench/wait-cost``) is when the
  measured figures appear; with the number of Prometheus queries it made, counted by
  Prometheus itself (``prometheus_http_requests_total``), and the time Prometheus spent;
- a steady-state refresh: the snapshot made stale (``/bench/expire-cost``, as after five
  minutes; the days held are kept), ``/cost`` served from the last snapshot meanwhile,
  and the time until the refresh of the days not held (yesterday and today) ends;
- ``/cost`` warm, the htmx filter (``?q=`` with ``HX-Request``), ``/api/cost``, and
  ``/cost/<service>``: first visits of several services, then one service again (its
  Prometheus answers kept), with the queries each makes.

Target: ``/cost`` for 500 services under 200 ms p95 warm, and the same number of queries
per refresh for every size.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import FastAPI

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: make the repository importable

from benchmarks.cost_history import (  # noqa: E402
    HISTORY_DAYS,
    NOW,
    Service,
    backfilled,
    month_to_date,
    services,
)
from benchmarks.served import get as served_get  # noqa: E402
from benchmarks.served import served  # noqa: E402
from benchmarks.timing import percentile  # noqa: E402
from portal.app import create_app  # noqa: E402
from portal.cli import initialise  # noqa: E402
from portal.config import Settings  # noqa: E402
from portal.cost.runtime import CostRuntime  # noqa: E402
from portal.integrations.prometheus import PrometheusClient, Series  # noqa: E402
from portal.integrations.prometheus_cost import PrometheusCostSource  # noqa: E402
from portal.integrations.prometheus_local import find_prometheus  # noqa: E402

TARGET_P95_MS = 200.0
TEAMS = 10
QUERY_TIMEOUT = 300.0  # seconds: the in-process timing of single queries and HTTP reads
NOW_ENV = "BENCH_COST_NOW"
LOADING = b"measured figures are loading (started "
SERVICE_PAGES = 5  # services whose page is visited first
HEADERS = {"X-Forwarded-User": "grace.hopper", "X-Forwarded-Groups": "platform-team"}
HANDLER = re.compile(
    r'^prometheus_http_request_duration_seconds_(sum|count)\{handler="/api/v1/query(?:_range)?"\}'
    r" (\S+)$",
    re.MULTILINE,
)


def served_app() -> FastAPI:
    """The app uvicorn serves (``--factory``): the portal, its cost runtime on Prometheus.

    Settings come from the ``PORTAL_*`` environment (``PORTAL_PROMETHEUS_URL`` included:
    the runtime is the one ``create_app`` builds); the clock from ``BENCH_COST_NOW``. The
    ``/bench/*-cost`` routes forget the measured days, make them stale, or wait for the
    refresh in flight.
    """
    app = create_app(Settings())
    now = datetime.fromisoformat(os.environ[NOW_ENV])
    runtime: CostRuntime = app.state.cost
    runtime.clock = lambda: now

    def forget() -> dict[str, str]:
        runtime.clear_measured()
        return {"forgot": "measured days"}

    def expire() -> dict[str, str]:
        runtime.expire()
        return {"expired": "measured snapshot"}

    def wait() -> dict[str, bool]:
        return {"idle": runtime.wait(QUERY_TIMEOUT)}

    for path, route in (("forget", forget), ("expire", expire), ("wait", wait)):
        app.add_api_route(f"/bench/{path}-cost", route, methods=["GET"], include_in_schema=False)
    return app


def write_catalog(path: Path, chosen: list[Service]) -> Path:
    """Every service as a Component owned by one of ``TEAMS`` Groups."""
    documents = [
        f"apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-{n}\n"
        "spec:\n  type: team\n  children: []\n"
        for n in range(TEAMS)
    ]
    documents += [
        f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {s.name}\n"
        f"spec:\n  type: service\n  lifecycle: production\n  owner: group:team-{s.number % TEAMS}\n"
        for s in chosen
    ]
    path.write_text("---\n".join(documents), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- Prometheus's load


def prometheus_load(url: str) -> tuple[int, float]:
    """Queries Prometheus answered so far (instant and range) and the seconds they took."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    count, seconds = 0, 0.0
    for kind, value in HANDLER.findall(text):
        if kind == "count":
            count += int(float(value))
        else:
            seconds += float(value)
    return count, seconds


class TimedPrometheus(PrometheusClient):
    """The real client, keeping how long each range query took (for the in-process refresh)."""

    def __init__(self, url: str) -> None:
        """Ask Prometheus at ``url`` with the benchmark's long timeout."""
        super().__init__(url, timeout=QUERY_TIMEOUT)
        self.seconds: list[float] = []

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Ask as the client does, timing it."""
        started = time.perf_counter()
        try:
            return super().query_range(promql, start, end, step)
        finally:
            self.seconds.append(time.perf_counter() - started)


def each_query(url: str, days: int) -> list[float]:
    """One refresh of ``days`` days, made in process by ``PrometheusCostSource``: seconds each."""
    client = TimedPrometheus(url)
    try:
        today = NOW.date()
        PrometheusCostSource(client).resource_days(today - timedelta(days=days - 1), today)
    finally:
        client.close()
    return client.seconds


# --------------------------------------------------------------------------- over HTTP


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[float, bytes]:
    """GET ``path`` as the benchmark's signed-in person; return the seconds and the body."""
    return served_get(port, path, {**HEADERS, **(headers or {})}, timeout=QUERY_TIMEOUT + 60)


def portal(env: dict[str, str]) -> AbstractContextManager[int]:
    """Serve ``served_app`` with uvicorn in a subprocess on a free port; yield the port."""
    return served("benchmarks.cost:served_app", env)


@dataclass
class Row:
    """One measure: its samples (seconds) and, when counted, Prometheus queries per request."""

    name: str
    samples: list[float]
    queries: str = ""

    def line(self) -> str:
        """The row as printed: p50, p95, max in ms, queries."""
        ms = [value * 1000 for value in self.samples]
        p50, p95 = percentile(ms, 0.5), percentile(ms, 0.95)
        return (
            f"{self.name:<60}{len(ms):>5}{p50:>10.1f}{p95:>10.1f}{max(ms):>10.1f}  {self.queries}"
        )


def timed(port: int, path: str, runs: int, headers: dict[str, str] | None = None) -> list[float]:
    """One untimed request, then ``runs`` timed ones."""
    get(port, path, headers)
    return [get(port, path, headers)[0] for _ in range(runs)]


def refreshes(port: int, url: str, start: str, runs: int, name: str) -> list[Row]:
    """``runs`` refreshes begun by ``start``: ``/cost`` meanwhile, until done, queries."""
    during, done, counts, answering = [], [], set(), []
    for _ in range(runs):
        get(port, start)
        before = prometheus_load(url)
        started = time.perf_counter()
        took, body = get(port, "/cost")
        if (LOADING in body) != (start == "/bench/forget-cost"):
            raise SystemExit(f"/cost during the {name}: the loading note is wrong")
        during.append(took)
        get(port, "/bench/wait-cost")
        done.append(time.perf_counter() - started)
        after = prometheus_load(url)
        counts.add(after[0] - before[0])
        answering.append(after[1] - before[1])
    said = "/".join(str(n) for n in sorted(counts))
    shown = "estimate + loading note" if start == "/bench/forget-cost" else "last snapshot"
    return [
        Row(f"GET /cost during the {name} ({shown})", during),
        Row(f"{name}: until the figures are in", done, f"{said} queries"),
        Row("  of which Prometheus answering", answering),
    ]


def measure(port: int, url: str, chosen: list[Service], runs: int, cold_runs: int) -> list[Row]:
    """Every measure of one size (see the module); checks the figures are the measured ones."""
    rows = [Row("GET /healthz (baseline)", timed(port, "/healthz", runs))]
    rows += refreshes(port, url, "/bench/forget-cost", cold_runs, "first load")
    rows.append(Row("  each query (first load, in process)", each_query(url, HISTORY_DAYS)))
    rows += refreshes(port, url, "/bench/expire-cost", max(cold_runs, 5), "steady refresh")
    rows.append(Row("  each query (steady refresh, in process)", each_query(url, 2)))
    size = len(get(port, "/cost")[1])
    rows.append(Row("GET /cost warm", timed(port, "/cost", runs), f"{size:,} bytes"))
    fragment = {"HX-Request": "true"}
    rows.append(
        Row("GET /cost?q=svc-01 (htmx filter)", timed(port, "/cost?q=svc-01", runs, fragment))
    )
    rows.append(Row("GET /api/cost", timed(port, "/api/cost", runs)))
    before = prometheus_load(url)
    visits = [s.name for s in chosen[1 : 1 + SERVICE_PAGES]]
    first = [get(port, f"/cost/{name}")[0] for name in visits]
    asked = (prometheus_load(url)[0] - before[0]) / len(first)
    rows.append(Row("GET /cost/<service>, first visit", first, f"{asked:g} queries/request"))
    page = f"/cost/{visits[0]}"
    before = prometheus_load(url)
    samples = timed(port, page, max(5, runs // 5))
    asked = (prometheus_load(url)[0] - before[0]) / (len(samples) + 1)
    rows.append(Row(f"GET {page} again (answers kept)", samples, f"{asked:g} queries/request"))
    check(port, chosen)
    return rows


def check(port: int, chosen: list[Service]) -> None:
    """Every service is on the page, measured by Prometheus, to the cent for two of them."""
    body = json.loads(get(port, "/api/cost", {"Accept": "application/json"})[1])
    shown = {row["service"]: row for row in body["services"]}
    if set(shown) != {s.name for s in chosen}:
        raise SystemExit(f"/api/cost shows {len(shown)} services, not {len(chosen)}")
    for service in (chosen[0], chosen[-1]):
        amount = shown[service.name]["month_to_date"]
        expected = str(month_to_date(service))
        if amount != {"amount": expected, "currency": "USD", "source": "Prometheus"}:
            raise SystemExit(f"{service.name}: month to date {amount}, expected {expected}")


def main() -> None:
    """Run every size and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,50,500", help="numbers of services, comma-separated")
    parser.add_argument("--runs", type=int, default=50, help="timed requests per warm measure")
    parser.add_argument("--cold-runs", type=int, default=3, help="cache refreshes timed per size")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if find_prometheus() is None:
        raise SystemExit("prometheus and promtool are not installed (Debian: prometheus)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.2f} before")
    print(f"history: {HISTORY_DAYS} days of hourly series up to {NOW:%Y-%m-%d %H:%M} UTC (clock)")
    results: dict[int, list[Row]] = {}
    with tempfile.TemporaryDirectory(prefix="cost-bench-") as scratch:
        root = Path(scratch)
        everyone = services(max(sizes))
        env = {
            "PORTAL_DATA_DIR": str(root / "var"),
            "PORTAL_AUTH_MODE": "trusted-header",
            "PORTAL_CATALOG_PATHS": str(write_catalog(root / "catalog.yaml", everyone)),
            "PORTAL_SECRET_KEY": "cost-benchmark",
            "PORTAL_GITOPS_SEED_DIR": str(REPO / "gitops-repo"),
            "PORTAL_TEMPLATES_DIR": str(REPO / "templates"),
            "PORTAL_RUN_WORKER": "false",
            NOW_ENV: NOW.isoformat(),
        }
        os.environ.update(env)
        report = initialise(Settings(), gitops=True)
        if report is None or report.problems:
            raise SystemExit(f"the catalog import failed: {report}")
        for size in sizes:
            chosen = everyone[:size]
            with backfilled(root / f"prometheus-{size}", chosen) as (prometheus, said):
                print(f"\n{size} services: {said}")
                with portal({**env, "PORTAL_PROMETHEUS_URL": prometheus.url}) as port:
                    results[size] = measure(port, prometheus.url, chosen, args.runs, args.cold_runs)
            print(f"{'measure (ms)':<60}{'n':>5}{'p50':>10}{'p95':>10}{'max':>10}")
            for row in results[size]:
                print(row.line())
    print(f"\nload average {os.getloadavg()[0]:.2f} after")
    for name in ("first load", "steady refresh"):
        asked = {
            size: next(r.queries for r in rows if r.name.startswith(f"{name}:"))
            for size, rows in results.items()
        }
        same = len(set(asked.values())) == 1
        print(f"queries per {name}: {asked} (the same for every size: {same})")
    largest = max(results)
    row = next(row for row in results[largest] if row.name == "GET /cost warm")
    warm = percentile([value * 1000 for value in row.samples], 0.95)
    verdict = "PASS" if warm < TARGET_P95_MS else "FAIL"
    print(f"/cost warm, {largest} services: p95 {warm:.1f} ms (< {TARGET_P95_MS:g} ms: {verdict})")


if __name__ == "__main__":
    main()
