"""Air-quality monitor benchmark (issue 4): cold page, cached page and manual-check latency.

Run ``.venv/bin/python benchmarks/air_quality.py [--runs 300] [--cold-runs 15]``. The
``air-quality-monitor`` template is rendered through the portal's own publish/render path
into a temp dir; the generated app is imported from there and served in process
(``TestClient``), its ``OPEN_METEO_URL`` pointing at a loopback stand-in that answers with
a canned response (never the internet). Two responses are used:

- ``recorded``: the recorded Lahore response (120 hours, PM2.5 and PM10; CAMS data via
  Open-Meteo, CC BY 4.0), as the generated tests use it;
- ``full``: a synthetic response of the real request's shape (``past_days=9&forecast_days=2``:
  264 hours, PM2.5, PM10 and NO2), so the forecast model is trained and walk-forward tested.

Measured:

- cold page: a fresh app (empty cache, no stored model); ``GET /`` fetches from the
  stand-in, parses, trains both models (saved with skops), assesses and renders;
- cached page: ``GET /`` on a warm app (data and model in memory);
- manual check: ``POST /check`` as htmx sends it (the fragment), and ``POST /api/check``.

Targets: cached page p95 < 30 ms, manual check p95 < 15 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

# Run as a script (`python benchmarks/air_quality.py`): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.rendering import render_defaults
from benchmarks.timing import machine, percentile, timed
from tests.templates.air_quality_app import open_meteo_stand_in

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "templates" / "air-quality-monitor"
RECORDED = "open_meteo_air_quality_lahore.json"
CHECK_FORM = {"pm2_5": "300", "pm10": "20", "nitrogen_dioxide": "10"}
HTMX = {"HX-Request": "true"}


def full_response() -> bytes:
    """A synthetic answer of the real request's shape: 11 days, three pollutants."""
    start = datetime(2026, 10, 1)
    times = [start + timedelta(hours=hour) for hour in range(24 * 11)]
    hourly: dict[str, list[Any]] = {"time": [t.strftime("%Y-%m-%dT%H:%M") for t in times]}
    for name, level in {"pm2_5": 9.0, "pm10": 16.0, "nitrogen_dioxide": 18.0}.items():
        hourly[name] = [
            round(
                level
                * (1 + 0.25 * math.sin((t - start).days / 2))
                * (1 + 0.35 * math.sin((t.hour - 7) / 24 * 2 * math.pi) ** 2),
                1,
            )
            for t in times
        ]
    units = {"time": "iso8601", **{name: "μg/m³" for name in hourly if name != "time"}}
    payload = {
        "latitude": 48.14,
        "longitude": 11.58,
        "utc_offset_seconds": 3600,
        "timezone": "Europe/Berlin",
        "hourly_units": units,
        "hourly": hourly,
    }
    return json.dumps(payload).encode()


def render_service(root: Path) -> Path:
    """Render the template with its default answers, as the portal does."""
    return render_defaults(TEMPLATE, root, {"name": "bench-air", "owner": "platform-team"})


def expect(response: Any, status: int, text: str) -> None:
    if response.status_code != status or text not in response.text:
        raise SystemExit(f"unexpected answer {response.status_code}: {response.text[:300]}")


def measure(
    main_module: Any, settings: Any, root: Path, runs: int, cold_runs: int
) -> dict[str, list[float]]:
    cold: list[float] = []
    for index in range(cold_runs + 1):
        fresh = dataclasses.replace(settings, model_dir=root / f"models-{index}")
        with TestClient(main_module.create_app(fresh)) as client:
            started = time.perf_counter()
            response = client.get("/")
            elapsed = time.perf_counter() - started
            expect(response, 200, "The last 9 days and tomorrow")
            if index:  # the first run warms imports and code paths
                cold.append(elapsed)
    with TestClient(
        main_module.create_app(dataclasses.replace(settings, model_dir=root / "warm"))
    ) as client:
        expect(client.get("/"), 200, "The last 9 days and tomorrow")
        page = timed(lambda: expect(client.get("/"), 200, "verdict"), runs, warm_up=10)
        fragment = timed(
            lambda: expect(client.post("/check", data=CHECK_FORM, headers=HTMX), 200, "anomaly"),
            runs,
            warm_up=10,
        )
        values = {"pm2_5": 300.0, "pm10": 20.0, "nitrogen_dioxide": 10.0}
        api = timed(
            lambda: expect(client.post("/api/check", json=values), 200, "anomaly"),
            runs,
            warm_up=10,
        )
    return {"cold": cold, "page": page, "check": fragment, "api_check": api}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--cold-runs", type=int, default=15)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-air-") as tmp:
        root = Path(tmp)
        service = render_service(root)
        sys.path.insert(0, str(service))
        main_module = importlib.import_module("app.main")
        settings_module = importlib.import_module("app.settings")
        recorded = (service / "tests" / "fixtures" / RECORDED).read_bytes()
        for label, body in (("recorded", recorded), ("full", full_response())):
            with open_meteo_stand_in(body) as url:
                settings = dataclasses.replace(
                    settings_module.Settings(),
                    open_meteo_url=url,
                    background_refresh=False,
                    log_level="WARNING",
                )
                results[label] = measure(
                    main_module, settings, root / label, args.runs, args.cold_runs
                )
    versions = f"scikit-learn {metadata.version('scikit-learn')}, skops {metadata.version('skops')}"
    print(f"machine:  {machine()}; {versions}")
    print(
        f"runs:     {args.runs} per warm series (after 10 warm-up requests), {args.cold_runs} cold"
    )
    print()
    print(f"{'measure':<58}{'p50':>9}{'p95':>9}")
    labels = {
        "cold": "cold page: fetch + train + assess + render",
        "page": "cached page (GET /)",
        "check": "manual check (POST /check, htmx fragment)",
        "api_check": "manual check (POST /api/check, JSON)",
    }
    for data, series in results.items():
        for key, label in labels.items():
            values = series[key]
            fifty, ninety_five = statistics.median(values), percentile(values, 0.95)
            print(f"{data + ': ' + label:<58}{fifty * 1000:>7.1f}ms{ninety_five * 1000:>7.1f}ms")
    print()
    targets = []
    for data, series in results.items():
        targets.append(
            (f"{data}: cached page p95 < 30 ms", percentile(series["page"], 0.95) < 0.030)
        )
        targets.append(
            (f"{data}: manual check p95 < 15 ms", percentile(series["check"], 0.95) < 0.015)
        )
    for label, ok in targets:
        print(f"{label:<44} {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
