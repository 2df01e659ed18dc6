"""The platform's own SLOs (sre/slos): traffic without a single error is 100%, not "no data".

An error counter that never counted has no series (prometheus_client creates a labelled
series on first use; Prometheus and Flux report errors per rule group or controller only
once one happened). Each spec's error query ends with ``or on() vector(0)``; the real
promtool evaluates the generated rules on series of healthy traffic alone and must find an
error ratio of 0 in the shortest window and over the period, and the whole budget left.
"""

from __future__ import annotations

import re
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.config import Settings
from portal.integrations.prometheus_local import LocalPrometheus, ScrapeTarget
from portal.integrations.promtool import PromtoolCli
from portal.slo.compiler.generate import GenerateOptions, generate, write_outputs
from portal.slo.store import build_slo_index
from tests.conftest import REPO, require_tool
from tests.loopback_http import serving
from tests.slo.support import SRE_SLOS

# Healthy traffic only: the series each SLO's total query reads, none of its error series.
HEALTHY: dict[str, list[dict[str, str]]] = {
    "portal-requests-availability": [
        {"series": 'portal_http_requests_total{job="portal",status="200"}', "values": "0+60x120"},
    ],
    "portal-requests-latency": [
        {
            "series": 'portal_http_request_duration_seconds_count{job="portal"}',
            "values": "0+60x120",
        },
        {
            "series": 'portal_http_request_duration_seconds_bucket{job="portal",le="1.0"}',
            "values": "0+60x120",
        },
    ],
    "flux-reconciliations": [
        {
            "series": 'controller_runtime_reconcile_total{namespace="flux-system"}',
            "values": "0+6x120",
        },
    ],
    "prometheus-rule-evaluations": [
        {"series": "prometheus_rule_evaluations_total", "values": "0+100x120"},
    ],
    "prometheus-scrapes": [{"series": 'up{job="portal"}', "values": "1x120"}],
    "prometheus-alert-notifications": [
        {"series": "prometheus_notifications_sent_total", "values": "0+2x120"},
    ],
}


def test_every_platform_slo_has_a_healthy_case() -> None:
    outputs = generate([SRE_SLOS], GenerateOptions())
    ids: set[str] = set()
    for output in outputs:
        document = yaml.safe_load(output.text)
        for group in document["groups"]:
            ids.update(rule["labels"]["sloth_id"] for rule in group["rules"] if "record" in rule)
    assert ids == set(HEALTHY)


def healthy_test(sloth_id: str, rule_file: str) -> dict[str, object]:
    """A promtool unit test: two hours of healthy traffic, then the SLI and budget."""

    def expect(expr: str, value: float) -> dict[str, object]:
        return {
            "expr": f'sum by (sloth_id) ({expr}{{sloth_id="{sloth_id}"}})',
            "eval_time": "90m",
            "exp_samples": [{"labels": f'{{sloth_id="{sloth_id}"}}', "value": value}],
        }

    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": HEALTHY[sloth_id],
                "promql_expr_test": [
                    expect("slo:sli_error:ratio_rate5m", 0),
                    expect("slo:sli_error:ratio_rate30d", 0),
                    expect("slo:period_error_budget_remaining:ratio", 1),
                ],
            }
        ],
    }


@pytest.mark.integration
@pytest.mark.parametrize("sloth_id", sorted(HEALTHY))
def test_healthy_traffic_without_error_series_is_100_percent(
    sloth_id: str, promtool: PromtoolCli, tmp_path: Path
) -> None:
    outputs = [o for o in generate([SRE_SLOS], GenerateOptions()) if o.kind == "rules"]
    write_outputs(outputs, tmp_path)
    service = sloth_id.split("-", 1)[0]
    test = tmp_path / f"{sloth_id}.test.yaml"
    test.write_text(yaml.safe_dump(healthy_test(sloth_id, f"{service}.rules.yaml")))

    result = promtool.test_rules(test)

    assert result.ok, result.output


class PortalWithoutErrors(BaseHTTPRequestHandler):
    """A stand-in portal whose ``/metrics`` counts only successful requests (no 5xx series)."""

    served = 0

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        PortalWithoutErrors.served += 25  # 25 requests between two scrapes, all 200
        body = (
            "# TYPE portal_http_requests_total counter\n"
            'portal_http_requests_total{method="GET",route="/catalog",status="200"} '
            f"{PortalWithoutErrors.served}\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.integration
def test_the_portal_availability_slo_is_100_percent_in_a_real_prometheus(
    tmp_path: Path,
) -> None:
    """The shipped spec, a real Prometheus, traffic without a 5xx: the pages say 100%."""
    require_tool("prometheus")
    spec = SRE_SLOS / "portal.yaml"
    rules = build_slo_index([spec]).rule_files()
    with serving(PortalWithoutErrors) as port:
        prometheus = LocalPrometheus(
            tmp_path / "prometheus",
            scrape=[ScrapeTarget("portal", (f"127.0.0.1:{port}",))],
            rules=rules,
            scrape_interval="1s",
            evaluation_interval="1s",
        )
        with prometheus:
            settings = Settings(
                data_dir=tmp_path / "var",
                catalog_paths=[],
                secret_key="platform-slos",
                gitops_seed_dir=REPO / "gitops-repo",
                templates_dir=REPO / "templates",
                run_worker=False,
                prometheus_url=prometheus.url,
                slo_paths=[str(spec)],
            )
            with TestClient(create_app(settings)) as client:
                runtime = client.app.state.slo  # type: ignore[attr-defined]
                runtime.snapshot_cache.seconds = 0
                deadline = time.monotonic() + 45
                while True:
                    body = client.get("/api/slos/portal-requests-availability").json()
                    if body["sli"] is not None:
                        break
                    assert time.monotonic() < deadline, f"no SLI within 45 s: {body}"
                    time.sleep(0.5)
                assert body["sli"] == 1.0 and body["budget_remaining"] == 1.0
                assert body["current_burn"] == 0.0
                html = client.get("/slos").text
    row = re.search(r'<tr data-sloth-id="portal-requests-availability">(.*?)</tr>', html, re.S)
    assert row is not None
    assert '<td data-label="SLI">100% ' in row.group(1)
    assert 'data-window="5m" data-value="0.0"' in row.group(1)
