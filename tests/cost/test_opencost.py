"""The OpenCost allocation source: parsing the documented response, and every bad answer."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from portal.integrations.cost_metrics import CostSource, CostSourceError, ResourceDay, Workload
from portal.integrations.opencost import (
    FakeAllocationSource,
    OpenCostClient,
    OpenCostCostSource,
    OpenCostError,
    parse_allocation_response,
)
from tests.loopback_http import serving

FIXTURE = Path(__file__).parent / "data" / "allocation_7d.json"
DAILY = Path(__file__).parent / "data" / "allocation_daily_by_app.json"
GIB = 2**30


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


def daily() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DAILY.read_text())
    return data


def daily_source(data: dict[str, Any] | None = None) -> OpenCostCostSource:
    sets = parse_allocation_response(daily() if data is None else data)
    return OpenCostCostSource(FakeAllocationSource(sets), "http://opencost.test:9003")


def by_key(days: list[ResourceDay]) -> dict[tuple[date, Workload], ResourceDay]:
    return {(day.day, day.workload): day for day in days}


def test_opencost_source_asks_one_daily_query_by_cluster_namespace_and_app() -> None:
    served = handler(200, DAILY.read_bytes())
    with serving(served) as port:
        source: CostSource = OpenCostCostSource.at(f"http://127.0.0.1:{port}", timeout=2)
        days = source.resource_days(date(2024, 5, 1), date(2024, 5, 2))

    assert source.name == "OpenCost" and source.url == f"http://127.0.0.1:{port}"
    (path,) = served.paths
    assert path.startswith("/allocation?")
    assert urllib.parse.parse_qs(path.partition("?")[2]) == {
        "window": ["2024-05-01T00:00:00Z,2024-05-03T00:00:00Z"],
        "aggregate": ["cluster,namespace,label:app.kubernetes.io/name"],
        "step": ["1d"],
    }
    assert [(day.day, day.workload) for day in days] == [
        (date(2024, 5, 1), Workload("dev", "shop", "")),
        (date(2024, 5, 1), Workload("dev", "shop", "api")),
        (date(2024, 5, 1), Workload("prod", "ml", "trainer")),
        (date(2024, 5, 2), Workload("dev", "shop", "api")),
    ]  # the cluster's idle capacity is nobody's workload: left out


def test_each_allocation_becomes_a_resource_day_with_the_hand_computed_figures() -> None:
    days = by_key(daily_source().resource_days(date(2024, 5, 1), date(2024, 5, 2)))
    d = Decimal

    api = days[date(2024, 5, 1), Workload("dev", "shop", "api")]
    assert api.hours == 24
    assert (api.cpu_request_core_hours, api.cpu_usage_core_hours, api.cpu_held_core_hours) == (
        d(24),
        d("9.6"),
        d(24),
    )
    assert (api.memory_request_gib_hours, api.memory_usage_gib_hours) == (d(48), d(24))
    assert api.memory_held_gib_hours == 48
    assert api.billed == d("0.96204")  # exactly what OpenCost sent, not a float's tail
    second = days[date(2024, 5, 2), Workload("dev", "shop", "api")]
    assert (second.cpu_usage_core_hours, second.memory_usage_gib_hours) == (d("14.4"), d(36))
    # A pod without the label ran 6 hours, bursting above its request: held is the usage.
    unlabelled = days[date(2024, 5, 1), Workload("dev", "shop", "")]
    assert unlabelled.hours == 6
    assert (unlabelled.cpu_request_core_hours, unlabelled.cpu_held_core_hours) == (d("1.5"), d(3))
    assert (unlabelled.memory_request_gib_hours, unlabelled.memory_held_gib_hours) == (d(3), d(3))
    assert unlabelled.billed == d("0.107544")
    trainer = days[date(2024, 5, 1), Workload("prod", "ml", "trainer")]
    assert (trainer.gpu_hours, trainer.pv_gib_hours) == (d(24), d(2400))
    assert trainer.billed == d("25.262338848")


def test_hours_come_from_running_hours_or_the_window_without_minutes() -> None:
    data = daily()
    api = data["data"][0]["dev/shop/api"]
    del api["minutes"]
    api["runningHours"] = 12
    unlabelled = data["data"][0]["dev/shop/__unallocated__"]
    del unlabelled["minutes"]

    days = by_key(daily_source(data).resource_days(date(2024, 5, 1), date(2024, 5, 1)))

    assert days[date(2024, 5, 1), Workload("dev", "shop", "api")].hours == 12
    assert days[date(2024, 5, 1), Workload("dev", "shop", "api")].cpu_request_core_hours == 12
    assert days[date(2024, 5, 1), Workload("dev", "shop", "")].hours == 24  # the whole window
    assert {day for day, _ in days} == {date(2024, 5, 1)}  # a step outside the range: not ours


def test_older_label_aggregate_names_read_the_same() -> None:
    data = daily()
    step = data["data"][1]
    step["dev/shop/app_kubernetes_io_name=api"] = step.pop("dev/shop/api")

    days = daily_source(data).resource_days(date(2024, 5, 2), date(2024, 5, 2))

    assert [day.workload for day in days] == [Workload("dev", "shop", "api")]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("shop/api", "expected a name cluster/namespace/app.kubernetes.io/name"),
        ("dev/shop/api/extra", "got 'dev/shop/api/extra'"),
    ],
)
def test_an_allocation_named_otherwise_is_an_error_naming_it(name: str, error: str) -> None:
    data = daily()
    data["data"][1] = {name: data["data"][1]["dev/shop/api"]}

    with pytest.raises(CostSourceError) as raised:
        daily_source(data).resource_days(date(2024, 5, 1), date(2024, 5, 2))

    message = str(raised.value)
    assert error in message and f"data[1][{json.dumps(name)}]" in message
    assert message.startswith("http://opencost.test:9003/allocation?window=2024-05-01T00:00:00Z")


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_non_finite_numbers_are_refused(value: str) -> None:
    text = DAILY.read_text().replace('"totalCost": 0.96204', f'"totalCost": {value}', 1)

    with pytest.raises(OpenCostError, match=r"totalCost: expected a finite number"):
        parse_allocation_response(json.loads(text))


def test_an_opencost_that_is_down_is_a_cost_source_error_naming_the_url() -> None:
    with serving(Handler) as port:
        pass  # nothing listens on the port any more
    source = OpenCostCostSource.at(f"http://127.0.0.1:{port}", timeout=1)

    with pytest.raises(CostSourceError, match=rf"127\.0\.0\.1:{port} is not reachable"):
        source.resource_days(date(2024, 5, 1), date(2024, 5, 1))


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        daily_source().resource_days(date(2024, 5, 2), date(2024, 5, 1))
