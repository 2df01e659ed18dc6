"""``portal serve`` builds its app with the garbage collector tuned for a server process.

Checked in a child process: tuning freezes everything alive, which in this test process
would keep every earlier test's objects for good.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from portal.serving import YOUNGEST_THRESHOLD
from tests.conftest import REPO

# Runs `portal serve` with uvicorn.run replaced: what the collector looks like when the
# server would start, and what uvicorn would have been given.
SERVE_WITHOUT_SERVING = """
import gc, json
import uvicorn
from typer.testing import CliRunner
from portal.cli import app

before = gc.get_threshold()
seen = {}

def record(application, **options):
    seen.update(
        threshold=gc.get_threshold(), frozen=gc.get_freeze_count(),
        tracked=len(gc.get_objects()), enabled=gc.isenabled(),
        app=type(application).__name__, options=options,
    )

uvicorn.run = record
result = CliRunner().invoke(app, ["serve", "--port", "8765"])
print(json.dumps({"exit": result.exit_code, "output": result.output, "before": before, **seen}))
"""


def serve_without_serving(data_dir: Path) -> dict[str, Any]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PORTAL_")}
    env |= {
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_CATALOG_PATHS": "",
        "PORTAL_GITOPS_SEED_DIR": str(REPO / "gitops-repo"),
        "PORTAL_RUN_WORKER": "false",
        # Neither a local Prometheus nor a local MLflow: nothing is served here.
        "PORTAL_PROMETHEUS_URL": "http://127.0.0.1:9",
        "PORTAL_MLFLOW_URL": "http://127.0.0.1:9",
        "PORTAL_SECRET_KEY": "test-secret-key",
    }
    result = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_SERVING],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return report


def test_serve_freezes_start_up_and_collects_the_youngest_generation_less_often(
    tmp_path: Path,
) -> None:
    report = serve_without_serving(tmp_path / "var")

    assert report["exit"] == 0, report["output"]
    assert report["app"] == "FastAPI"
    assert report["options"] == {"host": "127.0.0.1", "port": 8765, "log_level": "info"}
    # Only the youngest generation's threshold changes; the collector stays on.
    assert report["threshold"] == [YOUNGEST_THRESHOLD, *report["before"][1:]]
    assert report["enabled"] is True
    # The imports and the app are frozen: a full collection has almost nothing to walk.
    assert report["frozen"] > 50_000
    assert report["tracked"] < 1_000, report["tracked"]


def test_cycles_made_after_tuning_are_collected_without_being_asked() -> None:
    # Cycles only the collector frees, made in a loop as requests make them: the first ones
    # are gone once the youngest generation has run, without an explicit gc.collect().
    script = f"""
import weakref
from portal.serving import tune_collector

class Node:
    pass

tune_collector()
first = []
for index in range({YOUNGEST_THRESHOLD * 4}):
    node = Node()
    node.self = node
    if index < 100:
        first.append(weakref.ref(node))
print(sum(ref() is not None for ref in first))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
