"""A real Prometheus with the generated rules, fed by real services under load.

Two small services count their requests with prometheus-client; a load generator calls
them, one answering 10% of the calls with a 500, the other never failing. A Prometheus
started here (scrape and rule evaluation every second) loads the rules the portal
generates for an SLO of 99.9% on each. The portal's pages must then show a burn rate near
100x (10% errors over a 0.1% budget) and the page alert firing for the first (Sloth's page
alerts have no ``for``), and nothing for the second.

Also here: ``portal serve``'s own local Prometheus (config, generated rules, start, stop).
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from portal.app import create_app
from portal.config import Settings
from portal.integrations.prometheus import PrometheusClient
from portal.integrations.prometheus_local import LocalPrometheus, ScrapeTarget
from portal.slo.local import local_prometheus, portal_target
from portal.slo.runtime import SLORuntime
from portal.slo.store import build_slo_index
from tests.conftest import REPO, require_tool
from tests.loopback_http import serving

pytestmark = pytest.mark.integration
DEADLINE_SECONDS = 45.0
SPEC = """version: "prometheus/v1"
service: "{service}"
labels:
  owner: "team-{service}"
slos:
  - name: "availability"
    objective: 99.9
    description: "99.9% of {service}'s requests succeed."
    sli:
      events:
        error_query: sum(rate(demo_requests_total{{job="{service}",code=~"5.."}}[{{{{.window}}}}]))
        total_query: sum(rate(demo_requests_total{{job="{service}"}}[{{{{.window}}}}]))
    alerting:
      name: {title}Availability
      page_alert:
        labels:
          severity: page
      ticket_alert:
        labels:
          severity: ticket
"""


class DemoService:
    """An HTTP service whose every ``every``-th call to /work fails (0: never)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.calls = 0
        self.lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "demo_requests", "Requests by status code.", ["code"], registry=self.registry
        )
        for code in ("200", "500"):  # both series exist from the start, as rate() needs
            self.requests.labels(code=code)
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body, status, kind = generate_latest(service.registry), 200, CONTENT_TYPE_LATEST
                else:
                    status, body, kind = service.work(), b"ok", "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.handler = Handler
        self.port = 0  # set while the service runs
        self._serving = ExitStack()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def work(self) -> int:
        with self.lock:
            self.calls += 1
            failed = self.every > 0 and self.calls % self.every == 0
        status = 500 if failed else 200
        self.requests.labels(code=str(status)).inc()
        return status

    def __enter__(self) -> DemoService:
        self.port = self._serving.enter_context(serving(self.handler))
        return self

    def __exit__(self, *exc: object) -> None:
        self._serving.close()


def generate_load(services: list[DemoService], stop: threading.Event) -> None:
    """Call every service's /work in turn, a few hundred times a second each."""
    connections = [
        http.client.HTTPConnection("127.0.0.1", service.port, timeout=5) for service in services
    ]
    while not stop.is_set():
        for _ in range(5):
            for connection in connections:
                connection.request("GET", "/work")
                connection.getresponse().read()
        stop.wait(0.01)
    for connection in connections:
        connection.close()


@dataclass
class Live:
    """The running Prometheus and the spec folder its rules come from."""

    url: str
    specs: Path
    started: float  # when Prometheus answered: no SLO can have more data than since then


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    require_tool("prometheus")
    root = tmp_path_factory.mktemp("slo-live")
    specs = root / "specs"
    specs.mkdir()
    for service in ("checkout", "search"):
        text = SPEC.format(service=service, title=service.title())
        (specs / f"{service}.yaml").write_text(text, encoding="utf-8")
    rules = build_slo_index([specs]).rule_files()
    with DemoService(every=10) as checkout, DemoService(every=0) as search:
        stop = threading.Event()
        load = threading.Thread(target=generate_load, args=([checkout, search], stop))
        load.start()
        prometheus = LocalPrometheus(
            root / "prometheus",
            scrape=[
                ScrapeTarget("checkout", (checkout.address,)),
                ScrapeTarget("search", (search.address,)),
            ],
            rules=rules,
            scrape_interval="1s",
            evaluation_interval="1s",
        )
        try:
            with prometheus:
                yield Live(prometheus.url, specs, time.time())
        finally:
            stop.set()
            load.join(timeout=10)


def portal_settings(live: Live, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=None,
        catalog_paths=[],
        secret_key="slo-integration",
        gitops_seed_dir=REPO / "gitops-repo",
        templates_dir=REPO / "templates",
        run_worker=False,
        prometheus_url=live.url,
        slo_paths=[str(live.specs)],
    )


@pytest.fixture
def live_client(live: Live, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(portal_settings(live, tmp_path / "var"))) as client:
        runtime: SLORuntime = client.app.state.slo  # type: ignore[attr-defined]
        runtime.snapshot_cache.seconds = 0  # every request asks Prometheus afresh
        yield client


def wait_for_page_alert(client: TestClient) -> dict[str, Any]:
    """Poll the portal's API until checkout pages at about 100x (with a deadline).

    Rule groups are evaluated independently, so the alert may fire one evaluation before
    the burn rate it is shown with is recorded; and the first rates, from two scrapes of
    a few dozen requests, are coarse (one error in 19 requests is 53x; in 41, 122x). Both
    settle within seconds. The 1h window's burn, which the tests read too, is waited for
    as well: on a loaded machine it once still stood at 5 errors in 41 requests.
    """
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        body: dict[str, Any] = client.get("/api/slos/checkout-availability").json()
        burns = [body["current_burn"], body["burn"].get("1h")]
        settled = all(burn is not None and 80 < burn < 120 for burn in burns)
        if body["alert"] == "page" and settled:
            return body
        assert time.monotonic() < deadline, f"no page alert within {DEADLINE_SECONDS:g} s: {body}"
        time.sleep(0.25)


def wait_for_burn(client: TestClient, sloth_id: str) -> dict[str, Any]:
    """Poll until Prometheus has recorded the SLO's current burn rate (with a deadline)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        body: dict[str, Any] = client.get(f"/api/slos/{sloth_id}").json()
        if body["current_burn"] is not None:
            return body
        assert time.monotonic() < deadline, f"no burn rate within {DEADLINE_SECONDS:g} s: {body}"
        time.sleep(0.25)


def row_html(html: str, sloth_id: str) -> str:
    found = re.search(rf'<tr data-sloth-id="{re.escape(sloth_id)}">(.*?)</tr>', html, re.S)
    assert found, f"no row for {sloth_id}"
    return found.group(1)


def value_of(html: str, tile: str) -> float:
    match = re.search(rf'data-tile="{tile}" data-value="([^"]+)"', html)
    assert match, f"no {tile} tile with a value"
    return float(match.group(1))


def test_ten_percent_errors_burn_100x_and_page(live_client: TestClient) -> None:
    client = live_client
    slo = wait_for_page_alert(client)
    assert 80 < slo["burn"]["1h"] < 120

    html = client.get("/slos/checkout-availability").text
    assert 80 < value_of(html, "burn") < 120
    assert 'class="tile level-page"' in html
    assert re.search(
        r'<tr data-severity="page" data-speed="quick">.*?data-state="firing"', html, re.S
    )
    overview = client.get("/slos").text
    first = re.search(r'<tr data-sloth-id="([^"]+)"', overview)
    assert first is not None and first.group(1) == "checkout-availability"
    # The firing alert decides the row's colour, whatever the coverage.
    checkout = row_html(overview, "checkout-availability")
    assert re.search(r'class="badge bad slo-status" data-status="page"[^>]*>page firing<', checkout)
    assert "slo-banner" not in overview

    # Same load, no errors: burn 0 and no alert, not even pending.
    search = wait_for_burn(client, "search-availability")
    assert search["current_burn"] == pytest.approx(0)
    assert search["alert"] == "none" and not search["pending"]
    assert 'data-sloth-id="search-availability"' in overview


@pytest.mark.browser
def test_the_detail_page_draws_its_charts(live: Live, tmp_path: Path) -> None:
    from tests.browser_server import chromium, isolated_page, live_server

    settings = portal_settings(live, tmp_path / "var")
    with TestClient(create_app(settings)) as warm:
        wait_for_page_alert(warm)
    with live_server(settings) as url, chromium() as browser, isolated_page(browser, url) as tab:
        tab.goto("/slos/checkout-availability?range=1h")
        canvases = tab.locator(".slo-chart canvas")
        canvases.first.wait_for(state="visible", timeout=15_000)
        assert canvases.count() >= 2
        sizes = tab.evaluate(
            "[...document.querySelectorAll('.slo-chart canvas')]"
            ".map(c => [c.getBoundingClientRect().width, c.getBoundingClientRect().height])"
        )
        assert all(width > 100 and height > 100 for width, height in sizes), sizes


def test_serve_starts_a_local_prometheus_with_the_generated_rules(tmp_path: Path) -> None:
    require_tool("prometheus")
    settings = Settings(
        data_dir=tmp_path / "var",
        catalog_paths=[],
        gitops_seed_dir=REPO / "gitops-repo",
        slo_paths=[str(REPO / "sre" / "slos")],
        prometheus_port=0,
        prometheus_scrape_targets=["demo=127.0.0.1:9/probe"],
    )
    said: list[str] = []
    # A wildcard host: Prometheus must scrape the portal on loopback instead.
    with local_prometheus(
        settings, host="0.0.0.0", port=8123, say=said.append, interval="1s"
    ) as serving:
        assert serving.prometheus_url is not None
        client = PrometheusClient(serving.prometheus_url, timeout=5)
        assert client.is_up()
        config = yaml.safe_load((tmp_path / "var" / "prometheus" / "prometheus.yml").read_text())
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert jobs["portal"]["static_configs"] == [{"targets": ["127.0.0.1:8123"]}]
        assert jobs["demo"]["metrics_path"] == "/probe"
        assert sorted(config["rule_files"]) == [
            "rules/flux.rules.yaml",
            "rules/portal.rules.yaml",
            "rules/prometheus.rules.yaml",
        ]
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(client.query("sloth_slo_info")) < 6:  # every platform SLO's rules loaded
            assert time.monotonic() < deadline, "the generated rules were not evaluated"
            time.sleep(0.2)
    assert not client.is_up()
    assert said[0].startswith("Local Prometheus at http://127.0.0.1:")
    assert said[-1] == "Local Prometheus stopped."


def test_serve_leaves_a_configured_prometheus_alone(tmp_path: Path) -> None:
    configured = Settings(data_dir=tmp_path, prometheus_url="http://prometheus.example:9090")
    with local_prometheus(configured, host="127.0.0.1", port=8000) as serving:
        assert serving is configured
    missing = Settings(data_dir=tmp_path, prometheus_path=tmp_path / "no-prometheus")
    said: list[str] = []
    with local_prometheus(missing, host="127.0.0.1", port=8000, say=said.append) as serving:
        assert serving.prometheus_url is None
    assert "No Prometheus" in said[0] and "apt-get install prometheus" in said[0]
    assert portal_target("::1", 8000) == "[::1]:8000"


COVERED = re.compile(
    r'data-coverage="([0-9.]+)">((?:less than a minute|\d+ minutes?) of the 30-day window)<'
)


def test_a_fresh_prometheus_shows_its_coverage_and_no_verdict(
    live: Live, live_client: TestClient
) -> None:
    """Minutes of data: the pages say how little, and claim nothing about the 30 days.

    The coverage must come from the minute-by-minute pass of the query, not only from the
    latest sample (which says "just now"): it grows past 20 s once an aligned minute has
    passed since the first sample, so within 90 s of the start.
    """
    client = live_client
    wait_for_burn(client, "search-availability")
    deadline = time.monotonic() + 90
    while True:
        overview = client.get("/slos").text
        search = row_html(overview, "search-availability")
        found = COVERED.search(search)
        assert found, search
        seconds = float(found.group(1))
        assert 0 <= seconds <= time.time() - live.started + 2
        if seconds >= 20:
            break
        assert time.monotonic() < deadline, f"coverage stuck at {seconds} s"
        time.sleep(1)
    # No error at all, yet no verdict: 20 seconds say nothing about 30 days.
    assert 'data-status="insufficient"' in search and ">not enough data yet<" in search
    assert "meets the objective" not in overview and "budget exhausted" not in overview
    assert "<meter" not in search
    detail = client.get("/slos/search-availability").text
    assert re.search(
        r"Data: (less than a minute|\d+ minutes?) of the 30-day window; "
        r"a verdict about the period needs 3 days \(the longest alert window\)",
        detail,
    )
    assert "meets the objective" not in detail
    # Checkout pages: its row is red whatever the coverage, never green.
    checkout = row_html(overview, "checkout-availability")
    assert 'data-status="page"' in checkout and "badge ok" not in checkout
