"""AIOps detector benchmark (issue 14): NAB window scores of three detectors, and /detect speed.

Run ``.venv/bin/python benchmarks/aiops.py [--runs 20] [--rate 0.001]``.

**Detection quality, on real labelled data.** The Numenta Anomaly Benchmark subset vendored
in ``templates/aiops-detector/evaluation/nab/`` (MIT; see its README). Per file,
as NAB does, the first 15 % of the points are the probationary period
(``min(floor(0.15 n), 750)`` points, NAB's ``getProbationPeriod``): every detector learns on
them and only the points after them are scored. Nothing is retrained; the seasonal baseline
and the forest also judge each point against the recent past, which is computed from the
points before it only (``detect`` gets the whole file as context, so each point sees the
day before it, as the service's background loop would). Three detectors, each turned into
alarms by the template's own rule (``app.windows.corroborated``: a lone point counts half;
``app.detector.alarm_line``: the line for the rate on the training part, its tail
extrapolated when the rate is rarer than the part shows; the rate is the template's
default answer unless ``--rate``):

- ``iforest-raw``: an IsolationForest (the template's size and seed) on the raw values
  alone, its scores as robust z-scores of its training scores (a static model: no recent
  past);
- ``seasonal``: the template's seasonal baseline alone (``fit_seasonal`` and its
  ``residuals``, recent past included), its line for the whole rate;
- ``ensemble``: the shipped detector (``train_detector``, then ``detect`` over the whole file
  with ``since`` at the end of the probationary period).

The template's modules are imported (``app`` from the template folder on ``sys.path``).
Scoring (``benchmarks/nab_scoring.py``) is NAB's window style: a labelled window counts
once when any anomalous point falls inside it (recall = windows detected / windows);
anomalous points outside every window, merged into events when at most the template's gap
tolerance (3 steps) apart, are false alarms; precision = windows detected / (windows
detected + false-alarm events); F1. The table also counts the false-alarm points, which
show an alarm that stays on for days as what it is. Targets: the ensemble's F1 at least
both baselines' on every file, at most 10 false-alarm events per 4,000 scored points.

**Speed.** The template is rendered through the portal's own publish/render path into a temp
folder and served by uvicorn from the portal's venv (it has the app's dependencies). One
``POST /train`` with the probationary part of ``ec2_request_latency_system_failure``, then
``POST /detect`` with 10,000 inline points (that file's values repeated, every 5 minutes),
as ``{"timestamp", "value"}`` objects and as ``[timestamp, value]`` pairs, beside
``GET /healthz`` as the baseline in the same run. Target: ``/detect`` p95 < 200 ms (with
objects, the form every client already sends).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

# Run as a script (`python benchmarks/aiops.py`): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.nab_scoring import (
    TEMPLATE,
    FloatArray,
    NabFile,
    Score,
    load_nab,
    score,
    template_module,
)
from benchmarks.rendering import render_defaults
from benchmarks.timing import machine as describe_machine
from benchmarks.timing import percentile, timed
from portal.integrations.prometheus_local import free_port
from portal.scaffold.registry.manifest import load_template
from tests.templates.service_process import offline_env, status_of

detector_module = template_module("detector")
seasonal_module = template_module("seasonal")
series_module = template_module("series")
windows_module = template_module("windows")

MAX_EVENTS = 10.0
TARGET_DETECT_MS = 200.0
TIMED_FILE = "realKnownCause/ec2_request_latency_system_failure.csv"
DETECT_POINTS = 10_000
STEP_SECONDS = 300.0


def alarms(
    train: NDArray[np.bool_], scores: FloatArray, times: FloatArray, rate: float
) -> FloatArray:
    """Return the timestamps of the scored points whose evidence is above the training line.

    The template's rule: a lone point counts half (``corroborated``), and the line is
    ``alarm_line`` of the training part's evidence; ``train`` says which points are training.
    """
    gap = float(detector_module.GAP_TOLERANCE_STEPS) * STEP_SECONDS
    evidence = np.asarray(windows_module.corroborated(times, scores, gap), dtype=np.float64)
    line = float(detector_module.alarm_line(evidence[train], rate))
    return times[~train][evidence[~train] > line]


def iforest_raw(nab: NabFile, false_alarm_rate: float) -> FloatArray:
    """Return the anomalous timestamps of an IsolationForest on the raw values alone."""
    train = ~nab.scored
    forest = IsolationForest(
        n_estimators=detector_module.N_ESTIMATORS, random_state=detector_module.RANDOM_STATE
    )
    forest.fit(nab.values[train, None])
    raw = -forest.score_samples(nab.values[:, None])
    center, scale = seasonal_module.robust_center_scale(raw[train])
    scale = max(scale, seasonal_module.scale_floor(center, scale))
    scores = np.maximum((raw - center) / scale, 0.0)
    return alarms(train, scores, nab.timestamps, false_alarm_rate)


def seasonal_alone(nab: NabFile, false_alarm_rate: float) -> FloatArray:
    """Return the anomalous timestamps of the template's seasonal baseline alone."""
    train = ~nab.scored
    baseline = seasonal_module.fit_seasonal(nab.timestamps[train], nab.values[train])
    residuals = baseline.residuals(nab.timestamps, nab.values, STEP_SECONDS)
    return alarms(train, np.abs(residuals), nab.timestamps, false_alarm_rate)


def ensemble(nab: NabFile, false_alarm_rate: float) -> FloatArray:
    """Return the anomalous timestamps of the shipped ensemble."""
    train = ~nab.scored
    history = series_module.Series({}, nab.timestamps[train], nab.values[train])
    trained = detector_module.train_detector([history], false_alarm_rate)
    whole = series_module.Series({}, nab.timestamps, nab.values)
    found = trained.detect(whole, since=nab.split)
    anomalous: list[float] = [point.timestamp for point in found.anomalies]
    return np.asarray(anomalous, dtype=np.float64)


RUNNERS: dict[str, Callable[[NabFile, float], FloatArray]] = {
    "iforest-raw": iforest_raw,
    "seasonal": seasonal_alone,
    "ensemble": ensemble,
}


def evaluate(files: list[NabFile], false_alarm_rate: float) -> dict[str, dict[str, Score]]:
    """Score every detector on every file."""
    gap = float(detector_module.GAP_TOLERANCE_STEPS) * STEP_SECONDS
    return {
        nab.key: {
            name: score(nab, run(nab, false_alarm_rate), gap) for name, run in RUNNERS.items()
        }
        for nab in files
    }


def quality_table(results: dict[str, dict[str, Score]]) -> list[tuple[str, bool]]:
    """Print the per-file table; return the quality targets and whether each passes."""
    print(f"{'file':<38}{'detector':<13}{'windows':>8}{'events':>7}{'/4000':>7}", end="")
    print(f"{'points':>7}{'P':>6}{'R':>6}{'F1':>6}")
    targets = []
    for key, scores in results.items():
        short = key.split("/")[-1].removesuffix(".csv")
        for name, item in scores.items():
            print(
                f"{short:<38}{name:<13}{item.detected:>5}/{item.windows:<2}{item.events:>7}", end=""
            )
            print(f"{item.events_per_4000:>7.1f}{item.outside:>7}", end="")
            print(f"{item.precision:>6.2f}{item.recall:>6.2f}", end="")
            print(f"{item.f1:>6.2f}")
        mine, best = scores["ensemble"], max(scores[n].f1 for n in RUNNERS if n != "ensemble")
        targets.append((f"{short}: ensemble F1 >= both baselines", mine.f1 >= best))
        targets.append(
            (
                f"{short}: <= {MAX_EVENTS:g} false-alarm events / 4000",
                mine.events_per_4000 <= MAX_EVENTS,
            )
        )
    return targets


def render_service(root: Path) -> Path:
    """Render the template with its default answers, as the portal does."""
    return render_defaults(
        TEMPLATE, root, {"name": "bench-aiops", "owner": "sre", "description": "NAB benchmark"}
    )


def inline(times: FloatArray, values: FloatArray) -> list[dict[str, float]]:
    """Return points as the API's inline series (Unix seconds)."""
    return [{"timestamp": float(t), "value": float(v)} for t, v in zip(times, values, strict=True)]


def inline_pairs(times: FloatArray, values: FloatArray) -> list[list[float]]:
    """Return points as ``[timestamp, value]`` pairs, the API's compact form."""
    return [[float(t), float(v)] for t, v in zip(times, values, strict=True)]


def expect(response: httpx.Response, points: int | None = None) -> dict[str, Any]:
    """Return the JSON of a 200 answer (exit on anything else)."""
    if response.status_code != 200:
        raise SystemExit(
            f"{response.request.url.path}: {response.status_code} {response.text[:300]}"
        )
    body: dict[str, Any] = response.json()
    scored = body["results"][0]["series"][0]["points_scored"] if points is not None else None
    if scored != points:
        raise SystemExit(f"/detect scored {scored} points, not {points}")
    return body


@contextmanager
def serving(service: Path, models: Path) -> Iterator[str]:
    """Run the rendered app with uvicorn on a port, as its image does; yield its URL.

    Not ``tests.templates.service_process.serving_app``: it hands uvicorn the socket with
    ``--fd``, which uvicorn opens as AF_UNIX, so asyncio never sets TCP_NODELAY and every
    response written in more than one piece waits ~40 ms for the client's delayed ACK.
    """
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    env = offline_env(MODEL_DIR=str(models), LOG_LEVEL="WARNING")
    process = subprocess.Popen(command, cwd=service, env=env)
    try:
        deadline = time.monotonic() + 60
        while status_of(port, "/readyz") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the rendered app did not become ready")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure_http(nab: NabFile, runs: int, rate: float) -> dict[str, Any]:
    """Serve the rendered app; return /healthz and /detect timings and what /detect answered."""
    train = ~nab.scored
    start = float(nab.timestamps[0])
    times = start + STEP_SECONDS * np.arange(DETECT_POINTS, dtype=np.float64)
    values = np.resize(nab.values, DETECT_POINTS)  # the file's values again and again
    detect_body = json.dumps({"series": {"nab": inline(times, values)}}).encode()
    pairs_body = json.dumps({"series": {"nab": inline_pairs(times, values)}}).encode()
    headers = {"Content-Type": "application/json"}
    with tempfile.TemporaryDirectory(prefix="bench-aiops-") as tmp:
        service = render_service(Path(tmp))
        with (
            serving(service, Path(tmp) / "models") as url,
            httpx.Client(base_url=url, trust_env=False, timeout=60) as client,
        ):
            started = time.perf_counter()
            series = {"nab": inline(nab.timestamps[train], nab.values[train])}
            expect(client.post("/train", json={"series": series}))
            train_seconds = time.perf_counter() - started
            answer = expect(client.post("/detect", content=detect_body, headers=headers))
            healthz = timed(lambda: expect(client.get("/healthz")), runs, warm_up=3)
            detect, pairs = (
                timed(
                    lambda body=body: expect(  # type: ignore[misc]
                        client.post("/detect", content=body, headers=headers), DETECT_POINTS
                    ),
                    runs,
                    warm_up=2,
                )
                for body in (detect_body, pairs_body)
            )
    (scored,) = answer["results"][0]["series"]
    # The scoring alone, in process, on the same points: what the HTTP time is made of.
    history = series_module.Series({}, nab.timestamps[train], nab.values[train])
    trained = detector_module.train_detector([history], rate)
    whole = series_module.Series({}, times, values)
    scoring = timed(lambda: trained.detect(whole), runs, warm_up=2)
    return {
        "healthz": healthz,
        "detect": detect,
        "pairs": pairs,
        "scoring": scoring,
        "train_seconds": train_seconds,
        "request_bytes": len(detect_body),
        "pairs_bytes": len(pairs_body),
        "anomalies": len(scored["anomalies"]),
        "windows": len(scored["windows"]),
    }


def default_false_alarm_rate() -> float:
    """Return the template's default ``false_alarm_rate`` answer."""
    (question,) = [q for q in load_template(TEMPLATE).questions if q.name == "false_alarm_rate"]
    return float(question.default)


def machine() -> str:
    """Describe the machine the figures were taken on, with its load average (Linux)."""
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return describe_machine(f"load average {load}")


def ms(values: list[float]) -> str:
    """Format p50 / p95 in milliseconds."""
    return f"{statistics.median(values) * 1000:>8.1f}{percentile(values, 0.95) * 1000:>9.1f}"


def main() -> None:
    """Run both parts and print the tables and the targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="timed requests per measure")
    parser.add_argument(
        "--rate", type=float, default=None, help="false-alarm rate (default: the template's)"
    )
    parser.add_argument("--quality-only", action="store_true", help="skip the HTTP timings")
    args = parser.parse_args()
    rate = args.rate or default_false_alarm_rate()
    files = load_nab()
    versions = ", ".join(f"{n} {metadata.version(n)}" for n in ("numpy", "scikit-learn", "skops"))
    print(f"machine: {machine()}; {versions}")
    default = " (the template's default)" if rate == default_false_alarm_rate() else ""
    print(f"false_alarm_rate: {rate:g}{default}; probationary: NAB's 15 %")
    print()
    targets = quality_table(evaluate(files, rate))
    if args.quality_only:
        report(targets)
        return
    timed_file = next(nab for nab in files if nab.key == TIMED_FILE)
    http = measure_http(timed_file, args.runs, rate)
    print()
    trained_on = int((~timed_file.scored).sum())
    print(
        f"/train on {trained_on} points: {http['train_seconds'] * 1000:.0f} ms;"
        f" /detect body {http['request_bytes'] / 1024:.0f} KiB ({http['pairs_bytes'] / 1024:.0f}"
        f" KiB as pairs), {DETECT_POINTS:,} points, answered {http['anomalies']} anomalous"
        f" points in {http['windows']} windows"
    )
    print(f"{'measure (' + str(args.runs) + ' requests)':<52}{'p50 ms':>8}{'p95 ms':>9}")
    print(f"{'GET /healthz (baseline)':<52}{ms(http['healthz'])}")
    print(f"{'POST /detect, 10,000 inline points (objects)':<52}{ms(http['detect'])}")
    print(f"{'POST /detect, 10,000 inline points ([t, v] pairs)':<52}{ms(http['pairs'])}")
    print(f"{'of which scoring (Detector.detect in process)':<52}{ms(http['scoring'])}")
    detect_p95 = percentile(http["detect"], 0.95) * 1000
    targets.append((f"/detect p95 < {TARGET_DETECT_MS:g} ms", detect_p95 < TARGET_DETECT_MS))
    report(targets)


def report(targets: list[tuple[str, bool]]) -> None:
    """Print each target and whether it passes."""
    print()
    for label, ok in targets:
        print(f"{label:<72} {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
