"""The measured refresh has its own, longer timeout than the service page's queries.

A loopback HTTP server plays a slow Prometheus: the background refresh waits for it, the
service page's usage questions give up (``PORTAL_COST_QUERY_TIMEOUT_SECONDS`` against
``PORTAL_PROMETHEUS_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from portal.cost.runtime import runtime_from_settings
from portal.integrations.cost_metrics import CostSourceError
from portal.integrations.prometheus_cost import PrometheusCostSource
from tests.cost.test_runtime_refresh import _settings
from tests.loopback_http import serving

SLOW_SECONDS = 0.3


class FakeSlowPrometheus(BaseHTTPRequestHandler):
    """A Prometheus HTTP API answering every query with no series, ``SLOW_SECONDS`` late."""

    def do_GET(self) -> None:  # the client's query_range; any path gets the same answer
        """Answer an empty matrix after ``SLOW_SECONDS``."""
        time.sleep(SLOW_SECONDS)
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


def test_the_refresh_has_its_own_longer_timeout(tmp_path: Path) -> None:
    with serving(FakeSlowPrometheus) as port:
        url = f"http://127.0.0.1:{port}"
        settings = _settings(tmp_path).model_copy(
            update={
                "prometheus_url": url,
                "prometheus_timeout_seconds": 0.05,  # the service page's queries
                "cost_query_timeout_seconds": 5.0,  # the background refresh's
            }
        )
        runtime = runtime_from_settings(settings, None)
        start, end = datetime(2024, 3, 14, tzinfo=UTC), datetime(2024, 3, 15, tzinfo=UTC)
        refresh = runtime.sources[0]
        assert isinstance(refresh, PrometheusCostSource)
        assert refresh.increase("up", start, end) is None  # waited the 0.3 s: no series
        assert runtime.usage_metrics is not None
        with pytest.raises(CostSourceError, match=url):
            runtime.usage_metrics.increase("up", start, end)
