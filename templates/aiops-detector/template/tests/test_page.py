"""The page: charts of each model's series with the windows, the tables, bad parameters named.

Queries are read from the loopback Prometheus stand-in, as the page reads them in the
cluster; nothing on the page comes from a CDN.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from app.charts import MAX_CHART_POINTS, SeriesChart, source_views
from app.detector import Scores

from .conftest import Clock, PrometheusStub, Reply
from .synthetic import START, STEP, Anomaly, level, points, series, values_at

QUERY = 'sum(rate(http_requests_total{job="search"}[5m]))'
SPIKE = START + timedelta(days=9, hours=3)
CHART_DATA = re.compile(
    r'<script type="application/json" id="chart-data-[^"]+">(.*?)</script>', re.S
)
HTMX = {"HX-Request": "true"}


def _serve(prometheus: PrometheusStub, query: str = QUERY) -> None:
    def values(times: np.ndarray) -> np.ndarray:
        near = np.abs(times - SPIKE.timestamp()) < 2 * STEP
        return np.where(near, level(times) + 90.0, values_at(times, 51))

    prometheus.series[query] = [({"job": "search"}, values)]


def _train(client: TestClient, query: str = QUERY, step: int = 300, days: int = 8) -> None:
    window = {"start": START.isoformat(), "end": (START + timedelta(days=days)).isoformat()}
    response = client.post("/train", json={"queries": [query], **window, "step": step})
    assert response.status_code == 200, response.text


def _charts(html: str) -> list[dict[str, Any]]:
    return [json.loads(found) for found in CHART_DATA.findall(html)]


@pytest.fixture
def trained(client: TestClient, prometheus: PrometheusStub, clock: Clock) -> TestClient:
    """Return the client of an app trained on QUERY, an hour after the spike."""
    _serve(prometheus)
    _train(client)
    clock.now = SPIKE + timedelta(hours=1)
    return client


def test_a_query_is_charted_with_its_score_and_the_spike_shaded(trained: TestClient) -> None:
    """``?query=&start=&end=`` (the evidence's link): values, scores, the window, the table."""
    start, end = SPIKE - timedelta(hours=2), SPIKE + timedelta(minutes=40)
    page = trained.get(
        "/", params={"query": QUERY, "start": start.isoformat(), "end": end.isoformat()}
    )
    assert page.status_code == 200, page.text
    [chart] = _charts(page.text)
    assert chart["x"][0] >= start.timestamp() and chart["x"][-1] <= end.timestamp()
    assert len(chart["x"]) == len(chart["values"]) == len(chart["scores"]) == 33
    [(first, last, severity)] = chart["windows"]
    assert first <= SPIKE.timestamp() <= last and severity == "critical"
    at = chart["x"].index(SPIKE.timestamp())
    assert chart["scores"][at] > 2 and max(chart["scores"][:12]) < 1  # the alarm line is 1
    assert 'id="windows-table"' in page.text and "critical" in page.text
    assert "hx-trigger" not in page.text  # a range that has ended is not refreshed


def test_the_overview_shows_every_model_live(trained: TestClient) -> None:
    """``GET /``: the last six hours of every model; the tables refresh with htmx."""
    page = trained.get("/")
    assert page.status_code == 200
    assert str(escape(QUERY)) in page.text and len(_charts(page.text)) == 1
    assert 'id="windows"' in page.text and 'hx-trigger="every 60s"' in page.text
    assert "0 rules from" in page.text and "Dry run" in page.text


def test_an_inline_series_shows_the_points_last_detected(client: TestClient, clock: Clock) -> None:
    """Inline series have no Prometheus: the page charts what POST /detect last scored."""
    clock.now = START + timedelta(days=14)
    train = client.post("/train", json={"series": {"cpu": points(series(8, seed=31))}})
    assert train.status_code == 200
    before = client.get("/", params={"series": "cpu"})
    assert "no points scored since this replica started" in before.text
    fresh = series(1, seed=32, start=START + timedelta(days=10), anomalies=[Anomaly(200, 4, 70)])
    assert client.post("/detect", json={"series": {"cpu": points(fresh)}}).status_code == 200
    span = {"start": "2026-03-12T00:00:00Z", "end": "2026-03-13T00:00:00Z"}
    page = client.get("/", params={"series": "cpu", **span})
    [chart] = _charts(page.text)
    assert len(chart["x"]) == len(fresh)
    assert any(w[0] <= fresh.timestamps[201] <= w[1] for w in chart["windows"])


def test_an_unknown_query_is_a_clear_404_listing_the_trained_ones(trained: TestClient) -> None:
    """Not a 500: the page says what is missing and links the models it has."""
    page = trained.get("/", params={"query": "up"})
    assert page.status_code == 404
    assert "No model for this query" in page.text and '<code class="query">up</code>' in page.text
    [link] = re.findall(r'<li><a href="(/\?query=[^"]+)">', page.text)
    assert parse_qs(urlsplit(link).query)["query"] == [QUERY]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"start": "yesterday"}, "start", "is not a time"),
        ({"end": "nan"}, "end", "is not a time"),
        ({"start": "2026-03-12T00:00:00Z", "end": "2026-03-11T00:00:00Z"}, "start", "before end"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-03-11T00:00:00Z"}, "start", "35 days"),
        ({"query": QUERY, "series": "cpu"}, "series", "not both"),
    ],
)
def test_a_bad_parameter_is_a_422_page_naming_it(
    trained: TestClient, params: dict[str, str], field: str, message: str
) -> None:
    """Each bad parameter is named on the page, beside its input."""
    page = trained.get("/", params=params)
    assert page.status_code == 422
    assert re.search(rf"<strong>{field}</strong>: [^<]*{re.escape(message)}", page.text)
    for name in {"start", "end"} & set(params):  # kept as typed, to be corrected
        assert f'value="{escape(params[name])}"' in page.text


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (Reply(503, {"status": "error", "error": "overloaded"}), "Prometheus"),
        (Reply(400, {"status": "error", "error": "parse error: bad"}), "refused the query"),
    ],
)
def test_a_failing_prometheus_is_shown_never_a_500(
    trained: TestClient, prometheus: PrometheusStub, reply: Reply, said: str
) -> None:
    """A source that is down or refuses is said on the page; nothing is charted from a guess."""
    prometheus.errors[QUERY] = reply
    page = trained.get("/", params={"query": QUERY})
    assert page.status_code == 200
    assert _charts(page.text) == []
    [problem] = re.findall(r'<p class="problem" role="status">([^<]*)</p>', page.text)
    assert said in problem


def test_a_range_too_long_for_the_step_is_said(
    client: TestClient, prometheus: PrometheusStub, clock: Clock
) -> None:
    """More points than Prometheus answers per series: a shorter range is asked for."""
    _serve(prometheus)
    _train(client, step=60, days=1)
    clock.now = SPIKE
    page = client.get(
        "/", params={"query": QUERY, "start": (SPIKE - timedelta(days=30)).isoformat()}
    )
    assert page.status_code == 200
    assert "at most 11,000 are read: choose a shorter range" in page.text


def test_scoring_is_bounded_per_page_and_says_what_it_left(trained: TestClient) -> None:
    """Series over the page's budget are counted, not silently dropped."""
    runtime = trained.app.state.runtime  # type: ignore[attr-defined]
    models = runtime.registry.all()
    start, end = SPIKE - timedelta(hours=6), SPIKE
    [view] = source_views(runtime, models, start, end, 3, budget_points=10)
    assert (view.scored, view.over_budget, view.charts) == (0, 1, [])
    [view] = source_views(runtime, models, start, end, 3)
    assert (view.scored, view.over_budget, len(view.charts)) == (1, 0, 1)


def test_htmx_gets_the_part_it_refreshes(trained: TestClient) -> None:
    """``HX-Target`` names the part: the windows' table or the remediations, not the page."""
    windows = trained.get("/", headers={**HTMX, "HX-Target": "windows"})
    assert windows.status_code == 200
    assert windows.text.lstrip().startswith('<section class="card" id="windows"')
    assert "<html" not in windows.text and "Vary" in windows.headers
    listed = trained.get("/", headers={**HTMX, "HX-Target": "remediations"})
    assert listed.text.lstrip().startswith('<section class="card" id="remediations"')
    whole = trained.get("/", headers={**HTMX, "HX-Target": "elsewhere"})
    assert "<html" in whole.text


def test_the_assets_are_served_from_the_app_never_a_cdn(trained: TestClient) -> None:
    """htmx, uPlot and the chart script come from /static, with their licenses beside them."""
    page = trained.get("/").text
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert sources and all(source.startswith(("/static/", "data:")) for source in sources)
    for name in ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css", "chart.js", "style.css"):
        assert trained.get(f"/static/{name}").status_code == 200, name
    for license_file in ("htmx.LICENSE", "uPlot.LICENSE"):
        assert "Permission" in trained.get(f"/static/{license_file}").text


def test_a_long_series_is_drawn_thinned_keeping_every_stretch_top_score() -> None:
    """At most MAX_CHART_POINTS points are drawn, and a one-point spike is never thinned away."""
    size = 10_000
    times = 1772409600.0 + 60 * np.arange(size, dtype=np.float64)
    seasonal = np.zeros(size)
    seasonal[7777] = 5.0
    scores = Scores(times, np.arange(size, dtype=np.float64), np.zeros(size), seasonal)
    drawn = SeriesChart("c", "", scores, []).uplot()
    assert len(drawn["x"]) == len(drawn["values"]) == MAX_CHART_POINTS
    assert drawn["x"] == sorted(drawn["x"])
    assert max(drawn["scores"]) == 5.0 and times[7777] in drawn["x"]
