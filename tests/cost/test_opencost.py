"""The OpenCost allocation source: parsing the documented response, and every bad answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from portal.integrations.opencost import (
    FakeAllocationSource,
    OpenCostClient,
    OpenCostError,
    parse_allocation_response,
)
from tests.loopback_http import serving

FIXTURE = Path(__file__).parent / "data" / "allocation_7d.json"


def payload() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


class Handler(BaseHTTPRequestHandler):
    """Answers with ``status`` and ``body``; remembers the paths asked for."""

    status: ClassVar[int] = 200
    body: ClassVar[bytes] = FIXTURE.read_bytes()
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


def handler(status: int, body: bytes) -> type[Handler]:
    return type("Custom", (Handler,), {"status": status, "body": body, "paths": []})


def test_fixture_parses_into_allocations() -> None:
    sets = parse_allocation_response(payload())

    assert len(sets) == 2 and sets[1] == {}  # a null step is an empty set
    api = sets[0]["shop/api"]
    assert api.window_start == datetime(2024, 5, 1, tzinfo=UTC)
    assert api.window_end == datetime(2024, 5, 8, tzinfo=UTC)
    assert (api.cpu_core_hours, api.cpu_core_request_average, api.cpu_core_usage_average) == (
        84.0,
        0.5,
        0.2,
    )
    assert api.ram_byte_hours == 168 * 2**30
    assert api.total_cost == pytest.approx(3.36714)
    worker = sets[0]["shop/worker"]
    assert (worker.gpu_hours, worker.pv_byte_hours) == (168.0, 168 * 10 * 2**30)
    assert worker.properties["namespace"] == "shop"


def test_client_queries_allocation_over_loopback() -> None:
    served = handler(200, FIXTURE.read_bytes())
    with serving(served) as port:
        sets = OpenCostClient(f"http://127.0.0.1:{port}/", timeout=2).allocations("7d")

    assert set(sets[0]) == {"shop/api", "shop/worker"}
    assert served.paths == ["/allocation?window=7d&aggregate=container"]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, b"{}", "answered HTTP 500"),
        (200, b"<html>oops</html>", "response is not JSON"),
        (200, b'{"code": 400, "message": "bad window"}', "response.code: 400 bad window"),
        (200, b'{"code": 200, "data": {}}', "response.data: expected a list"),
    ],
)
def test_client_bad_answers_raise_a_clear_error(status: int, body: bytes, error: str) -> None:
    with serving(handler(status, body)) as port:
        client = OpenCostClient(f"http://127.0.0.1:{port}", timeout=2)
        with pytest.raises(OpenCostError, match=error):
            client.allocations("1d")


def test_unreachable_opencost_is_an_error_naming_the_url() -> None:
    with serving(Handler) as port:
        pass  # the port is free again: nothing listens
    client = OpenCostClient(f"http://127.0.0.1:{port}", timeout=1)

    with pytest.raises(OpenCostError, match=rf"127\.0\.0\.1:{port} is not reachable"):
        client.allocations("1d")


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="PORTAL_OPENCOST_URL"):
        OpenCostClient("file:///etc/passwd")


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("ramByteHours", None, 'data[0]["shop/api"].ramByteHours: missing'),
        ("totalCost", "3.2", 'data[0]["shop/api"].totalCost: expected a number'),
        ("cpuCoreHours", True, 'data[0]["shop/api"].cpuCoreHours: expected a number'),
        ("window", None, 'data[0]["shop/api"].window: missing'),
        ("window", {"start": "yesterday", "end": "2024-05-08T00:00:00Z"}, "window.start: not an"),
        ("window", {"start": "2024-05-01T00:00:00Z"}, "window.end: expected an RFC 3339"),
    ],
)
def test_missing_or_wrong_fields_are_named(field: str, value: object, error: str) -> None:
    data = payload()
    if value is None:
        del data["data"][0]["shop/api"][field]
    else:
        data["data"][0]["shop/api"][field] = value

    with pytest.raises(OpenCostError) as raised:
        parse_allocation_response(data)

    assert error in str(raised.value)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        ([], "response: expected a JSON object"),
        ({"code": 200, "data": [[]]}, "data[0]: expected an object"),
        ({"code": 200, "data": [{"x": 1}]}, 'data[0]["x"]: expected an object'),
    ],
)
def test_malformed_shapes_are_named(response: object, error: str) -> None:
    with pytest.raises(OpenCostError) as raised:
        parse_allocation_response(response)

    assert error in str(raised.value)


def test_fake_source_answers_and_records() -> None:
    sets = parse_allocation_response(payload())
    fake = FakeAllocationSource(sets)

    assert fake.allocations("30d", "namespace") == sets
    assert fake.asked == [("30d", "namespace")]
    down = FakeAllocationSource(error=OpenCostError("OpenCost at x is not reachable"))
    with pytest.raises(OpenCostError, match="not reachable"):
        down.allocations("1d")
