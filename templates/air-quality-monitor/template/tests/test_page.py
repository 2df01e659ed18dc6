"""The page a citizen reads: verdict, chart (WHO line, average line, legend), manual check."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.testclient import TestClient

HX = {"HX-Request": "true"}


def chart_spec(html: str, pollutant: str) -> dict[str, Any]:
    """Return the JSON the page hands to uPlot for one pollutant."""
    match = re.search(
        rf'<script type="application/json" id="chart-data-{pollutant}">(.*?)</script>', html, re.S
    )
    assert match, f"no chart data for {pollutant}"
    spec: dict[str, Any] = json.loads(match.group(1))
    return spec


def legend(html: str, pollutant: str) -> str:
    """Return the legend list of one chart."""
    match = re.search(
        rf'<figure class="card chart" id="chart-{pollutant}">.*?(<ul class="legend".*?</ul>)',
        html,
        re.S,
    )
    assert match, f"no legend for {pollutant}"
    return match.group(1)


def test_page_shows_the_verdict_readings_and_attribution(client: TestClient) -> None:
    """One clear verdict, each pollutant, NO2 unavailable, CAMS and Open-Meteo credited."""
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert "<h1>Air quality in Testville</h1>" in html
    assert re.search(r'class="verdict verdict-(elevated|anomaly)"', html)
    assert 'id="reading-nitrogen_dioxide"' in html and "Unavailable" in html
    assert "Copernicus Atmosphere Monitoring Service (CAMS)" in html
    assert "Open-Meteo.com" in html and "CC BY 4.0" in html
    assert "Data fetched just now" in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_chart_has_the_who_line_the_average_line_and_the_forecasts(client: TestClient) -> None:
    """The WHO guideline thick and blue, the average dashed orange, both forecasts labelled."""
    spec = chart_spec(client.get("/").text, "pm2_5")
    series = {item["key"]: item for item in spec["series"]}
    who = series["who"]
    assert who["stroke"] == "#1f4fd1" and who["width"] == 4
    assert set(who["values"]) == {15.0}
    assert who["label"] == "WHO 24-hour guideline: 15 µg/m³"
    average = series["average"]
    assert average["stroke"] == "#f08c00" and average["dash"] == [8, 6]
    history = [v for v in series["history"]["values"] if v is not None]
    assert len(set(average["values"])) == 1
    assert abs(average["values"][0] - sum(history) / len(history)) < 1e-9
    assert len(spec["x"]) == 5  # 4 days of history in the recording, and tomorrow
    assert series["history"]["values"][-1] is None  # tomorrow is not history
    assert series["model"]["values"][-1] is not None and series["cams"]["values"][-1] is not None
    assert "CAMS forecast" in series["cams"]["label"]
    assert "Our model's forecast" in series["model"]["label"]
    assert spec["bands"][0]["label"] == "Good"


def test_legend_reads_in_seconds(client: TestClient) -> None:
    """Every line of the chart is named in a legend rendered on the server."""
    items = legend(client.get("/").text, "pm10")
    assert "WHO 24-hour guideline: 45 µg/m³" in items
    assert re.search(r"\d-day average: \d+\.\d µg/m³", items)
    assert "CAMS forecast for tomorrow (Open-Meteo)" in items
    assert "Our model&#39;s forecast for tomorrow" in items
    assert "error ±" in items
    assert 'swatch-thick" style="--swatch: #1f4fd1"' in items
    assert 'swatch-dashed" style="--swatch: #f08c00"' in items


def test_a_missing_pollutant_has_no_chart_but_a_message(client: TestClient) -> None:
    """NO2 is not in the recording: the chart says so instead of drawing nothing."""
    html = client.get("/").text
    assert 'id="chart-data-nitrogen_dioxide"' not in html
    assert "No values from Open-Meteo for NO₂" in html


def test_static_assets_are_served_locally_with_their_licenses(client: TestClient) -> None:
    """Htmx and uPlot come from the app itself (no CDN), each with its license."""
    html = client.get("/").text
    for asset in ("/static/htmx.min.js", "/static/uPlot.iife.min.js", "/static/chart.js"):
        assert f'src="{asset}"' in html
        assert client.get(asset).status_code == 200
    assert "MIT" in client.get("/static/uPlot.LICENSE").text
    assert "Zero-Clause BSD" in client.get("/static/htmx.LICENSE").text
    assert "https://" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', html)[:6])


def test_manual_check_answers_with_an_htmx_fragment(client: TestClient) -> None:
    """PM2.5 = 300: High pollution anomaly; PM2.5 = 5: Clean air, at once."""
    client.get("/")
    form = {"pm2_5": "300", "pm10": "20", "nitrogen_dioxide": "10"}
    high = client.post("/check", data=form, headers=HX)
    assert high.status_code == 200
    assert "High pollution anomaly" in high.text and "<html" not in high.text
    assert high.headers["Vary"] == "HX-Request"
    clean = client.post("/check", data={**form, "pm2_5": "5", "pm10": "10"}, headers=HX)
    assert "Clean air" in clean.text


def test_manual_check_field_messages(client: TestClient) -> None:
    """Bad values get a message on their own field (out-of-band for htmx)."""
    response = client.post(
        "/check", data={"pm2_5": "-1", "pm10": "", "nitrogen_dioxide": "9999"}, headers=HX
    )
    assert response.status_code == 200  # the messages are what htmx swaps in
    text = response.text
    assert re.search(r'id="error-pm2_5" hx-swap-oob="true">PM2.5 cannot be negative<', text)
    assert re.search(r'id="error-pm10" hx-swap-oob="true">enter the PM10 concentration', text)
    assert "not a plausible NO₂ reading" in text


def test_manual_check_without_javascript_renders_the_page(client: TestClient) -> None:
    """A plain form post gets the whole page back with the answer and the values kept."""
    form = {"pm2_5": "300", "pm10": "20", "nitrogen_dioxide": "10"}
    page = client.post("/check", data=form)
    assert page.status_code == 200 and "<h1>Air quality in Testville</h1>" in page.text
    assert 'id="check-result"' in page.text and "High pollution anomaly" in page.text
    assert 'name="pm2_5" type="number"' in page.text and 'value="300"' in page.text
    bad = client.post("/check", data={**form, "pm10": "abc"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
