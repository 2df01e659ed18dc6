"""SLO pages against a fake Prometheus: overview, detail, API, coverage and status."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.config import Settings
from portal.integrations.prometheus import Series
from portal.slo.charts import budget_range_query, sli_range_query
from tests.databases import SQLITE_ONLY
from tests.slo.app_access import slo_runtime
from tests.slo.live_data import FakeSLOPrometheus, record, spec

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

HTMX = {"HX-Request": "true"}


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "slos"
    folder.mkdir()
    (folder / "checkout.yaml").write_text(
        spec("checkout", ("availability", 99.9), ("latency", 99.0), owner="team-a")
    )
    (folder / "search.yaml").write_text(spec("search", ("availability", 99.5), owner="team-b"))
    return folder


@pytest.fixture
def slo_client(settings: Settings, specs: Path) -> Iterator[TestClient]:
    """The app with two spec files of its own and no Prometheus configured."""
    with TestClient(create_app(settings.model_copy(update={"slo_paths": [str(specs)]}))) as client:
        yield client


def fake_for(client: TestClient) -> FakeSLOPrometheus:
    """A fake Prometheus where checkout-availability pages and search tickets."""
    runtime = slo_runtime(client)
    slos = {entry.sloth_id: entry.slo for entry in runtime.slo_index().entries}
    fake = FakeSLOPrometheus(url="http://prometheus.test:9090")
    burns = {"30d": 0.02}  # a fast burn that just started: 98% of the budget left
    record(fake, slos["checkout-availability"], burn=20.0, burns=burns, alerts=[("page", "firing")])
    record(fake, slos["checkout-latency"], burn=0.2)
    record(fake, slos["search-availability"], burns={"6h": 2.0, "3d": 1.5, "30d": 0.6})
    fake.add("ALERTS", 1, sloth_id="search-availability", sloth_severity="ticket")
    runtime.prometheus = fake
    return fake


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-sloth-id="([^"]+)"', html)


def test_the_overview_lists_slos_by_urgency_with_burn_levels(slo_client: TestClient) -> None:
    fake = fake_for(slo_client)
    response = slo_client.get("/slos")
    assert response.status_code == 200
    html = response.text
    assert '<a href="/slos" aria-current="page">SLOs</a>' in html
    assert "not available yet" not in html and "slo-banner" not in html
    assert rows(html) == ["checkout-availability", "search-availability", "checkout-latency"]
    assert "numbers from <code>http://prometheus.test:9090</code>" in html
    assert re.search(r'data-status="page"[^>]*>page firing<', html)
    assert re.search(r'data-status="ticket"[^>]*>ticket firing<', html)
    assert re.search(
        r'class="burn level-page" data-label="5m" data-window="5m" data-value="20', html
    )
    assert re.search(
        r'class="burn level-ticket" data-label="3d" data-window="3d" data-value="1.5', html
    )
    assert 'class="burn level-ok" data-label="5m"' in html
    assert '<meter min="0" max="1"' in html and "40%" in html  # search spent 60% of its budget
    assert '<strong class="bad-text">1 paging</strong>' in html
    assert len(fake.calls) == 7  # the fixed queries
    slo_client.get("/slos")
    assert len(fake.calls) == 7  # cached


def test_filters_work_as_a_plain_form_and_as_an_htmx_fragment(slo_client: TestClient) -> None:
    fake_for(slo_client)
    html = slo_client.get("/slos?team=team-b").text
    assert rows(html) == ["search-availability"]
    assert '<option value="team-b" selected>' in html and "1 of 3 SLOs" in html
    assert rows(slo_client.get("/slos?service=checkout").text) == [
        "checkout-availability",
        "checkout-latency",
    ]
    fragment = slo_client.get("/slos?team=team-a", headers=HTMX)
    assert fragment.headers["Vary"] == "HX-Request"
    assert "<html" not in fragment.text and fragment.text.lstrip().startswith('<div id="slo-live"')
    assert 'hx-get="/slos?team=team-a&amp;service="' in fragment.text
    assert rows(fragment.text) == ["checkout-availability", "checkout-latency"]
    assert "No SLO matches these filters" in slo_client.get("/slos?team=nobody").text


def test_without_prometheus_the_slos_are_listed_from_their_specs(slo_client: TestClient) -> None:
    html = slo_client.get("/slos").text
    assert 'data-prometheus="none"' in html and "No Prometheus is configured" in html
    assert len(rows(html)) == 3
    detail = slo_client.get("/slos/checkout-availability")
    assert detail.status_code == 200 and "No Prometheus is configured" in detail.text


def test_an_unreachable_prometheus_is_a_banner_not_an_error(slo_client: TestClient) -> None:
    slo_runtime(slo_client).prometheus = FakeSLOPrometheus(up=False, url="http://down:9090")
    response = slo_client.get("/slos")
    assert response.status_code == 200
    assert "Prometheus at <code>http://down:9090</code> is not reachable" in response.text
    assert len(rows(response.text)) == 3
    api = slo_client.get("/api/slos").json()
    assert api["prometheus"]["available"] is False
    assert "not reachable" in api["prometheus"]["error"]
    assert slo_client.get("/slos/search-availability").status_code == 200


def test_the_detail_page_has_tiles_alerts_charts_rules_and_spec(slo_client: TestClient) -> None:
    fake = fake_for(slo_client)
    fake.ranges[sli_range_query("checkout-availability")] = [
        Series({"sloth_window": "5m"}, [(1000.0, 0.02), (1060.0, 0.021)]),
        Series({"sloth_window": "1h"}, [(1000.0, 0.018), (1060.0, 0.019)]),
    ]
    fake.ranges[budget_range_query("checkout-availability")] = [
        Series({}, [(1000.0, 0.5), (1060.0, 0.45)])
    ]
    html = slo_client.get("/slos/checkout-availability?range=6h").text
    assert re.search(r'data-tile="burn" data-value="20(\.0)?"', html)
    assert re.search(r'data-tile="budget" data-value="0\.98', html)
    # A 30-day budget at 20x lasts a day and a half.
    assert '<span class="tile-value">1d 12h</span>' in html
    assert html.count('<tr data-severity="page"') == 2 and html.count('data-severity="ticket"') == 2
    assert '<td data-state="firing"><span class="badge bad">firing</span>' in html
    assert "14.4x" in html and "(error ratio 1.44%)" in html
    chart_data = re.search(
        r'<script type="application/json" id="slo-chart-data">(.*?)</script>', html
    )
    assert chart_data is not None
    charts = json.loads(chart_data.group(1))["charts"]
    assert [c["id"] for c in charts] == ["burn-0", "burn-1", "burn-2", "burn-3", "budget"]
    assert charts[0]["series"][0]["values"] == [pytest.approx(20), pytest.approx(21)]
    assert charts[-1]["series"][0]["values"] == [50.0, 45.0]
    assert charts[0]["end"] - charts[0]["start"] == 6 * 3600  # the x axis spans the range
    assert 'data-chart="burn-0"' in html and 'data-chart="burn-1"' not in html  # no data there
    assert '<script src="/static/uPlot.iife.min.js" defer></script>' in html
    assert 'aria-current="page">6h</a>' in html
    assert '<div class="highlight">' in html and "slo:sli_error:ratio_rate5m" in html
    assert 'checkout.yaml</code> <span class="muted">(the portal\'s own repository)' in html
    assert ("query_range", sli_range_query("checkout-availability")) in fake.calls
    fragment = slo_client.get("/slos/checkout-availability", headers=HTMX).text
    assert fragment.lstrip().startswith('<div id="slo-live"') and "slo-chart-data" not in fragment


def test_unknown_slos_are_404_and_prometheus_only_slos_have_a_page(
    slo_client: TestClient,
) -> None:
    assert slo_client.get("/slos/nope", headers={"Accept": "text/html"}).status_code == 404
    assert slo_client.get("/api/slos/nope").status_code == 404
    fake = fake_for(slo_client)
    other = {"sloth_id": "legacy-api", "sloth_service": "legacy", "sloth_slo": "api"}
    fake.add("sloth_slo_info", 1, **other, sloth_objective="99")
    fake.add("slo:time_period:days", 30, **other)
    fake.add("slo:current_burn_rate:ratio", 3, **other)
    fake.add("slo:sli_error:ratio_rate5m", 0.03, **other, sloth_window="5m")
    html = slo_client.get("/slos").text
    assert "legacy-api" in rows(html) and ">no spec</span>" in html
    detail = slo_client.get("/slos/legacy-api").text
    assert "known from Prometheus only" in detail and "3.00x" in detail


def test_the_json_api_gives_the_same_numbers(slo_client: TestClient) -> None:
    fake_for(slo_client)
    body = slo_client.get("/api/slos?team=team-a").json()
    assert body["prometheus"] == {
        "url": "http://prometheus.test:9090",
        "available": True,
        "error": None,
    }
    first = body["items"][0]
    assert first["sloth_id"] == "checkout-availability" and first["alert"] == "page"
    assert first["burn"]["5m"] == pytest.approx(20) and first["period"] == "30d"
    assert first["time_to_exhaustion_seconds"] == pytest.approx(30 * 86400 / 20)
    one = slo_client.get("/api/slos/search-availability").json()
    assert one["alert"] == "ticket" and one["budget_remaining"] == pytest.approx(0.4)
    # What error-budget policies ask: the lowest budget left among a service's SLOs.
    runtime = slo_runtime(slo_client)
    assert runtime.budget_remaining("checkout") == pytest.approx(0.8)
    assert runtime.budget_remaining("unknown") is None


def row_html(html: str, sloth_id: str) -> str:
    found = re.search(rf'<tr data-sloth-id="{re.escape(sloth_id)}">(.*?)</tr>', html, re.S)
    assert found, f"no row for {sloth_id}"
    return found.group(1)


def test_young_slos_show_their_coverage_and_no_verdict(slo_client: TestClient) -> None:
    runtime = slo_runtime(slo_client)
    slos = {entry.sloth_id: entry.slo for entry in runtime.slo_index().entries}
    fake = FakeSLOPrometheus(url="http://prometheus.test:9090")
    record(fake, slos["checkout-availability"], burn=0.1, coverage=15 * 60)
    record(fake, slos["checkout-latency"], burn=0.1, remaining=-2.0, coverage=15 * 60)
    record(fake, slos["search-availability"], burn=0.1)  # 30 days of data
    runtime.prometheus = fake

    html = slo_client.get("/slos").text
    young = row_html(html, "checkout-availability")
    assert "15 minutes of the 30-day window" in young
    assert 'data-status="insufficient"' in young and ">not enough data yet<" in young
    assert "meets the objective" not in young
    spent = row_html(html, "checkout-latency")
    assert "budget exhausted" not in spent and 'budget-text bad"' not in spent
    assert "<meter" not in spent and "<meter" in row_html(html, "search-availability")
    assert 'data-status="meets"' in row_html(html, "search-availability")
    assert "of the 30-day window" not in row_html(html, "search-availability")
    assert "2 with not enough data yet for a verdict" in html

    detail = slo_client.get("/slos/checkout-availability").text
    assert "Data: 15 minutes of the 30-day window; a verdict about the period needs 3 days" in (
        detail
    )
    assert "SLI over 15 minutes</span>" in detail
    assert "not enough data yet (15 minutes of the 30-day window)" in detail
    assert "meets the objective" not in detail
    spent_detail = slo_client.get("/slos/checkout-latency").text
    assert "exhausted: overspent" not in spent_detail


def test_a_firing_alert_is_never_a_green_row(slo_client: TestClient) -> None:
    runtime = slo_runtime(slo_client)
    slos = {entry.sloth_id: entry.slo for entry in runtime.slo_index().entries}
    fake = FakeSLOPrometheus(url="http://prometheus.test:9090")
    # Within the objective over the period (90% of the budget left), ticket alert firing.
    record(
        fake,
        slos["search-availability"],
        burn=0.5,
        burns={"6h": 2.0, "3d": 1.2},
        remaining=0.9,
        alerts=[("ticket", "firing")],
    )
    # The slow ticket condition met by the numbers, its alert not (yet) firing.
    record(fake, slos["checkout-latency"], burn=0.5, burns={"6h": 1.5, "3d": 1.1}, remaining=0.9)
    record(fake, slos["checkout-availability"], burn=0.1, remaining=0.9)
    runtime.prometheus = fake

    html = slo_client.get("/slos").text
    firing = row_html(html, "search-availability")
    assert re.search(
        r'class="badge warn slo-status" data-status="ticket"[^>]*>ticket firing<', firing
    )
    assert "badge ok" not in firing and "meets the objective" not in firing
    met = row_html(html, "checkout-latency")
    assert re.search(r'class="badge warn slo-status"[^>]*>ticket condition met<', met)
    assert 'class="burn level-ticket" data-label="3d"' in met
    calm = row_html(html, "checkout-availability")
    assert 'class="badge ok slo-status" data-status="meets"' in calm
    assert "level-ticket" not in calm and "level-page" not in calm
    assert rows(html)[:2] == ["search-availability", "checkout-latency"]

    detail = slo_client.get("/slos/search-availability").text
    assert "within the objective so far, but the ticket alert fires" in detail
    assert "meets the objective" not in detail
    assert re.search(
        r'<tr data-severity="ticket" data-speed="slow">.*?data-state="firing"', detail, re.S
    )
    assert re.search(
        r'<tr data-severity="ticket" data-speed="quick">.*?data-state="inactive"', detail, re.S
    )
    lagging = slo_client.get("/slos/checkout-latency").text
    assert re.search(
        r'<tr data-severity="ticket" data-speed="slow">.*?data-state="met"', lagging, re.S
    )
