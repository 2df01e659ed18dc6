"""Fixtures of the cost tests: a real Prometheus holding 14 backfilled days of cluster series."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from portal.integrations.prometheus import PrometheusClient, PrometheusError
from portal.integrations.prometheus_local import LocalPrometheus
from tests.conftest import require_tool
from tests.cost.openmetrics_history import HISTORY_END, Backfill, write_history

READY_SECONDS = 15.0
# promtool cuts blocks of at most this span: one pass over the file per block, so the
# default 2 h would parse the 15 days 180 times (a minute) instead of twice.
MAX_BLOCK = "504h"


@pytest.fixture(scope="session")
def backfilled_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfill]:
    """A real Prometheus with the history of ``tests.cost.openmetrics_history``.

    The OpenMetrics text is turned into TSDB blocks by ``promtool tsdb create-blocks-from
    openmetrics``; Prometheus serves them on a free loopback port with nothing to scrape
    (so its head stays empty) and a retention that keeps them. Yields the URL and the
    history's end; stops Prometheus at the end of the session.
    """
    promtool = require_tool("promtool")
    executable = require_tool("prometheus")
    folder = tmp_path_factory.mktemp("cost-prometheus")
    history = write_history(folder / "history.om", HISTORY_END)
    created = subprocess.run(
        [
            *(str(promtool), "tsdb", "create-blocks-from", "openmetrics"),
            *(f"--max-block-duration={MAX_BLOCK}", "--", str(history), str(folder / "data")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if created.returncode != 0:
        pytest.fail(f"promtool could not backfill: {created.stderr[-2000:]}")
    history.unlink()  # 30 MB the TSDB now holds
    prometheus = LocalPrometheus(folder, executable=executable, retention="60d", scrape_self=False)
    prometheus.start()
    try:
        _wait_for_blocks(prometheus.url)
        yield Backfill(prometheus.url, HISTORY_END)
    finally:
        prometheus.stop()


def _wait_for_blocks(url: str) -> None:
    """Wait until the backfilled series answer (Prometheus loads blocks before ready)."""
    client = PrometheusClient(url)
    at = HISTORY_END.timestamp()
    deadline = time.monotonic() + READY_SECONDS
    try:
        while True:
            try:
                if client.query_range("count(kube_pod_labels)", at, at, 60):
                    return
            except PrometheusError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus at {url} did not serve the backfilled blocks")
            time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture(scope="module")
def backfill_client(backfilled_prometheus: Backfill) -> Iterator[PrometheusClient]:
    """A client of the backfilled Prometheus (one per test module)."""
    prometheus = PrometheusClient(backfilled_prometheus.url)
    yield prometheus
    prometheus.close()
