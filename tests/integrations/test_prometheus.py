"""Prometheus integration: the real client (against a stub HTTP API), the fake, the local server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from portal.integrations.prometheus import (
    FakePrometheus,
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnavailableError,
    Sample,
)
from portal.integrations.prometheus_local import (
    LocalPrometheus,
    LocalPrometheusError,
    ScrapeTarget,
    config_text,
    free_port,
    parse_targets,
    process_alive,
)
from tests.conftest import require_tool
from tests.loopback_http import serving

VECTOR = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [
            {"metric": {"__name__": "up", "job": "portal"}, "value": [1700000000.0, "1"]},
            {"metric": {"__name__": "up", "job": "other"}, "value": [1700000000.0, "NaN"]},
        ],
    },
}
MATRIX = {
    "status": "success",
    "data": {
        "resultType": "matrix",
        "result": [{"metric": {"job": "portal"}, "values": [[10, "0.5"], [20, "+Inf"]]}],
    },
}


class StubPrometheus(BaseHTTPRequestHandler):
    """Answers like Prometheus' HTTP API; the query text picks the behaviour."""

    seen: ClassVar[list[dict[str, list[str]]]] = []

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query)
        StubPrometheus.seen.append(params)
        query = params.get("query", [""])[0]
        if url.path == "/":
            self._send(200, {})
        elif query == "slow":
            time.sleep(1.0)
            self._send(200, VECTOR)
        elif query == "bad(":
            self._send(400, {"status": "error", "error": "parse error"})
        elif query == "starting":
            self._send(503, {"status": "error", "error": "not ready"})
        elif url.path == "/api/v1/query":
            self._send(200, VECTOR)
        elif url.path == "/api/v1/query_range":
            self._send(200, MATRIX)
        else:
            self._send(404, {})


@pytest.fixture
def stub_url() -> Iterator[str]:
    with serving(StubPrometheus) as port:
        yield f"http://127.0.0.1:{port}"


def test_instant_and_range_queries_are_parsed(stub_url: str) -> None:
    client = PrometheusClient(stub_url, timeout=2)
    samples = client.query("up")
    assert samples[0] == Sample({"__name__": "up", "job": "portal"}, 1.0)
    assert samples[1].value != samples[1].value  # NaN stays NaN
    (series,) = client.query_range("rate(x[5m])", 0, 20, 10)
    assert series.points[0] == (10.0, 0.5) and series.points[1][1] == float("inf")
    assert StubPrometheus.seen[-1]["step"] == ["10s"]
    assert client.is_up()
    client.close()


def test_a_bad_query_is_our_bug_not_an_outage(stub_url: str) -> None:
    with pytest.raises(PrometheusQueryError, match="HTTP Status Code 400"):
        PrometheusClient(stub_url).query("bad(")


def test_errors_and_timeouts_mean_not_reachable(stub_url: str) -> None:
    client = PrometheusClient(stub_url, timeout=0.3)
    with pytest.raises(PrometheusUnavailableError, match=r"not reachable \(HTTP Status Code 503"):
        client.query("starting")
    started = time.monotonic()
    with pytest.raises(PrometheusUnavailableError, match=r"no answer within 0.3 s"):
        client.query("slow")
    assert time.monotonic() - started < 0.9  # no retries with a backoff


def test_a_closed_port_is_reported_with_the_url_and_without_credentials(
    refusing_port: int,
) -> None:
    port = refusing_port
    client = PrometheusClient(f"http://user:secret@127.0.0.1:{port}", timeout=1)
    assert client.url == f"http://127.0.0.1:{port}"
    with pytest.raises(PrometheusUnavailableError) as caught:
        client.query("up")
    message = str(caught.value)
    assert message == f"Prometheus at http://127.0.0.1:{port} is not reachable (connection refused)"
    assert "secret" not in message
    assert client.is_up() is False


def test_the_fake_answers_selectors_and_records_calls() -> None:
    fake = FakePrometheus()
    fake.add("slo:current_burn_rate:ratio", 2.0, sloth_id="a-x", team="t")
    fake.add("slo:current_burn_rate:ratio", 0.5, sloth_id="b-y")
    fake.add("ALERTS", 1, sloth_id="a-x", alertstate="firing")
    fake.add("ALERTS", 1, alertname="Other")
    assert len(fake.query("slo:current_burn_rate:ratio")) == 2
    assert [s.value for s in fake.query('slo:current_burn_rate:ratio{sloth_id="a-x"}')] == [2.0]
    assert len(fake.query('ALERTS{sloth_id!=""}')) == 1
    assert len(fake.query('{__name__=~"slo:.+", sloth_id!~"b-.*"}')) == 1
    grouped = fake.query('max by (sloth_id) ({__name__=~"slo:.+|ALERTS"})')
    assert sorted((s.labels.get("sloth_id", ""), s.value) for s in grouped) == [
        ("", 1.0),  # the ALERTS series without a sloth_id form their own group
        ("a-x", 2.0),
        ("b-y", 0.5),
    ]
    assert all("__name__" not in s.labels for s in grouped)
    with pytest.raises(PrometheusQueryError):
        fake.query("sum(rate(x[5m]))")
    assert fake.calls[0] == ("query", "slo:current_burn_rate:ratio")
    down = FakePrometheus(up=False)
    assert not down.is_up()
    with pytest.raises(PrometheusUnavailableError, match="is not reachable"):
        down.query("up")


def test_scrape_targets_and_config_are_written_as_prometheus_reads_them() -> None:
    targets = parse_targets(["api=127.0.0.1:8080", "api=127.0.0.1:8081", "jobs=h:9/m/x"])
    assert targets == [
        ScrapeTarget("api", ("127.0.0.1:8080", "127.0.0.1:8081")),
        ScrapeTarget("jobs", ("h:9",), "/m/x"),
    ]
    with pytest.raises(ValueError, match="job=host:port"):
        parse_targets(["no-job"])
    text = config_text(targets, ["rules/a.yaml"], scrape_interval="1s", evaluation_interval="2s")
    config = yaml.safe_load(text)
    assert config["global"]["evaluation_interval"] == "2s"
    assert config["rule_files"] == ["rules/a.yaml"]
    assert config["scrape_configs"][1]["metrics_path"] == "/m/x"


def test_a_busy_preferred_port_gives_another() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert free_port(taken) != taken
    assert free_port(0) > 0


def test_without_the_binary_the_local_prometheus_says_how_to_install_it(tmp_path: Path) -> None:
    missing = LocalPrometheus(tmp_path, executable=tmp_path / "no-prometheus")
    with pytest.raises(LocalPrometheusError, match="apt-get install prometheus"):
        missing.start()
    assert not missing.running


RULES = """groups:
  - name: demo
    rules:
      - record: demo:one
        expr: vector(1)
"""


@pytest.mark.integration
def test_a_local_prometheus_starts_evaluates_reloads_and_stops(tmp_path: Path) -> None:
    require_tool("prometheus")
    local = LocalPrometheus(
        tmp_path / "prometheus",
        rules={"demo.rules.yaml": RULES},
        scrape_interval="1s",
        evaluation_interval="1s",
    )
    with local:
        client = PrometheusClient(local.url, timeout=2)
        assert client.is_up()
        deadline = time.monotonic() + 20
        while not client.query("demo:one"):
            assert time.monotonic() < deadline, "the rules were never evaluated"
            time.sleep(0.2)
        config = yaml.safe_load((local.folder / "prometheus.yml").read_text())
        own = {"job_name": "prometheus", "metrics_path": "/metrics"}
        assert config["scrape_configs"][0] == {
            **own,
            "static_configs": [{"targets": [f"127.0.0.1:{local.port}"]}],
        }
        local.reload({"other.rules.yaml": RULES.replace("demo:one", "demo:two")})
        assert not (local.folder / "rules" / "demo.rules.yaml").exists()
        while not client.query("demo:two"):
            assert time.monotonic() < deadline, "the reloaded rules never showed up"
            time.sleep(0.2)
    assert not local.running
    assert not client.is_up()
    assert (local.folder / "data").is_dir()  # the TSDB lives in the given folder


ORPHAN_MAKER = """
import sys, time
from pathlib import Path
from portal.integrations.prometheus_local import LocalPrometheus
LocalPrometheus(Path(sys.argv[1])).start()
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.integration
def test_a_prometheus_left_by_a_killed_portal_is_stopped_by_the_next_start(
    tmp_path: Path,
) -> None:
    require_tool("prometheus")
    folder = tmp_path / "prometheus"
    command = [sys.executable, "-c", ORPHAN_MAKER, str(folder)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as portal:
        assert portal.stdout is not None and portal.stdout.readline() == "ready\n"
        orphan = int((folder / "prometheus.pid").read_text())
        portal.kill()  # SIGKILL: the portal cannot stop its Prometheus
    assert Path(f"/proc/{orphan}").exists()
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        with LocalPrometheus(folder) as local:  # would fail on the orphan's TSDB lock
            assert PrometheusClient(local.url, timeout=2).is_up()
            assert not process_alive(orphan)
        assert not (folder / "prometheus.pid").exists()
        (folder / "prometheus.pid").write_text(f"{unrelated.pid}\n")  # a reused pid
        with LocalPrometheus(folder):
            assert unrelated.poll() is None  # not ours: left alone
    finally:
        unrelated.kill()
        unrelated.wait()
        if process_alive(orphan):  # the test failed: leave no Prometheus behind
            os.kill(orphan, signal.SIGKILL)


@pytest.mark.integration
def test_a_relative_folder_is_anchored_before_prometheus_runs_inside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("prometheus")
    monkeypatch.chdir(tmp_path)
    # The ./var of `make run`; Prometheus' working folder is this folder itself.
    with LocalPrometheus(Path("var/prometheus")) as local:
        assert local.folder == tmp_path / "var" / "prometheus"
        assert PrometheusClient(local.url, timeout=2).is_up()
    assert not (tmp_path / "var" / "prometheus" / "var").exists()


INTERRUPTED_STOP = """
import os, signal, sys
from pathlib import Path
from portal.integrations.prometheus_local import LocalPrometheus
local = LocalPrometheus(Path(sys.argv[1]))
local.start()
os.kill(int(local.pid_path.read_text()), signal.SIGSTOP)  # deaf to SIGTERM for now
print("stopping", flush=True)
local.stop()
"""


@pytest.mark.integration
def test_a_stop_cut_short_leaves_the_pid_file_to_the_next_start(tmp_path: Path) -> None:
    require_tool("prometheus")
    folder = tmp_path / "prometheus"
    command = [sys.executable, "-c", INTERRUPTED_STOP, str(folder)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as portal:
        assert portal.stdout is not None and portal.stdout.readline() == "stopping\n"
        pid = int((folder / "prometheus.pid").read_text())
        try:
            time.sleep(0.5)  # in stop(), waiting for Prometheus to exit
            portal.send_signal(signal.SIGINT)  # a second Ctrl-C
            assert portal.wait(timeout=30) != 0
            # Prometheus has not exited yet: the next start must still find it.
            assert process_alive(pid)
            assert (folder / "prometheus.pid").read_text() == f"{pid}\n"
        finally:
            if process_alive(pid):
                os.kill(pid, signal.SIGCONT)  # it now acts on the SIGTERM it was sent
    deadline = time.monotonic() + 30
    while process_alive(pid):
        assert time.monotonic() < deadline, "the stopped Prometheus did not exit"
        time.sleep(0.1)
