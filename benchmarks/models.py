"""Models page benchmark (issue 16): ``/models`` over a real MLflow with 200 models x 50 versions.

Run ``.venv/bin/python benchmarks/models.py [--models 200 --versions 50 --runs 200]``
(needs the MLflow of ``make tools``). A local MLflow (``LocalMlflow``, SQLite) is filled
over its REST API as the services' training code fills it: per service two registered
models (``<service>-air-quality``, ``<service>-detector``), an experiment per model and
``--versions`` versions each. The first ``--detailed`` models get one run per version
with its holdout metrics (what a detail page charts); the others log one run whose
versions all point at it, which keeps the fill to about one REST call per version (the
overview never reads runs). ``--keep DIR`` keeps the filled MLflow in ``DIR`` and
reuses it next time (the fill takes minutes; MLflow writes one SQLite transaction a call).

The portal is served by uvicorn in a subprocess with ``PORTAL_MLFLOW_URL`` pointing at
that MLflow, a catalog whose components name the models (8 teams) and a GitOps main
where every service pins staging and prod. Timed over HTTP, beside the direct
``registered-models/search`` call the overview's refresh makes, in the same run:

- ``registered-models/search`` (one page of up to 1000 models, every alias and latest
  version): what MLflow itself takes;
- one overview refresh in process, and the MLflow calls it makes (counted);
- ``GET /models`` first (waits for the refresh), then warm for at least three refresh
  periods: kept for 5 s, refreshed in the background after that. Target p95 < 150 ms;
- ``GET /api/models``, and ``GET /models/<name>`` (that model's versions and metrics).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: make the repository importable

from benchmarks.served import get, served  # noqa: E402
from benchmarks.timing import percentile  # noqa: E402
from portal.app import create_app  # noqa: E402
from portal.changes.runtime import ChangesRuntime  # noqa: E402
from portal.cli import initialise  # noqa: E402
from portal.config import Settings  # noqa: E402
from portal.db import make_engine  # noqa: E402
from portal.integrations.mlflow import MlflowRegistry  # noqa: E402
from portal.integrations.mlflow_local import LocalMlflow, find_mlflow  # noqa: E402
from portal.models.pins import PIN_FILE, pin_text  # noqa: E402
from portal.models.registry_runtime import OVERVIEW_SECONDS, RegistryRuntime  # noqa: E402
from tests.integrations.mlflow_support import CountingTransport  # noqa: E402
from tests.proposals.seed import push_to_main  # noqa: E402

TARGET_P95_MS = 150.0
KINDS = ("air-quality", "detector")
TEAMS = 8
FILL_THREADS = 4
STAGING, PROD = 50, 40  # the versions each service pins (capped at --versions)


def service_name(number: int) -> str:
    return f"bench-{number:03d}"


def model_names(models: int) -> list[str]:
    return [f"{service_name(i // len(KINDS))}-{KINDS[i % len(KINDS)]}" for i in range(models)]


# --------------------------------------------------------------------------- filling MLflow


class Filler:
    """Creates models, experiments, runs and versions over MLflow's REST API."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=f"{url}/api/2.0/mlflow/", timeout=120)
        self.calls = 0

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(path, json=body)
        self.calls += 1
        if response.status_code != 200:
            raise SystemExit(f"MLflow refused {path}: {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer

    def run(self, experiment: str, version: int) -> str:
        info = self.post("runs/create", {"experiment_id": experiment, "start_time": 1})
        run_id: str = info["run"]["info"]["run_id"]
        metrics = {"holdout_mae": 4.0 - version * 0.02, "holdout_rmse": 6.0 - version * 0.03}
        logged = [{"key": k, "value": v, "timestamp": 1, "step": 0} for k, v in metrics.items()]
        self.post("runs/log-batch", {"run_id": run_id, "metrics": logged})
        return run_id

    def model(self, name: str, versions: int, detailed: bool) -> None:
        self.post("registered-models/create", {"name": name})
        experiment = self.post("experiments/create", {"name": name})["experiment_id"]
        shared = None if detailed else self.run(experiment, versions)
        for version in range(1, versions + 1):
            run_id = shared or self.run(experiment, version)
            tags = {
                "service": name.rsplit("-", 2)[0],
                "git_commit": f"{version:040x}",
                "sha256": f"{version:064x}",
                "training_window_start": "2026-01-01T00:00:00+00:00",
                "training_window_end": "2026-01-08T00:00:00+00:00",
                "primary_metric": "holdout_mae",
                "primary_metric_direction": "lower",
            }
            self.post(
                "model-versions/create",
                {
                    "name": name,
                    "source": f"runs:/{run_id}/model",
                    "run_id": run_id,
                    "tags": [{"key": k, "value": v} for k, v in tags.items()],
                },
            )
        self.post(
            "registered-models/alias",
            {"name": name, "alias": "challenger", "version": str(versions)},
        )


def filled(url: str, names: list[str], versions: int) -> bool:
    """Tell whether MLflow already holds every model with its newest version."""
    with MlflowRegistry(url, 120) as registry:
        latest = {model.name: model.latest_version for model in registry.models()}
    return all(latest.get(name) == str(versions) for name in names)


def fill(url: str, names: list[str], versions: int, detailed: int) -> tuple[float, int]:
    """Fill MLflow with FILL_THREADS clients; return the seconds and REST calls it took."""
    fillers = [Filler(url) for _ in range(FILL_THREADS)]
    started = time.perf_counter()

    def one(index: int) -> None:
        fillers[index % FILL_THREADS].model(names[index], versions, index < detailed)

    with ThreadPoolExecutor(FILL_THREADS) as pool:
        list(pool.map(one, range(len(names))))
    for filler in fillers:
        filler.client.close()
    return time.perf_counter() - started, sum(filler.calls for filler in fillers)


# --------------------------------------------------------------------------- catalog, GitOps


def write_catalog(path: Path, services: int) -> Path:
    documents = [
        "apiVersion: backstage.io/v1alpha1\nkind: Group\n"
        f"metadata: {{name: team-{team}}}\nspec: {{type: team, children: []}}\n"
        for team in range(TEAMS)
    ]
    for number in range(services):
        service = service_name(number)
        models = ", ".join(f"{service}-{kind}" for kind in KINDS)
        documents.append(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n"
            f"  name: {service}\n  annotations:\n    portal.platform/models: {models}\n"
            "    portal.platform/model-metric: holdout_mae\n"
            f"spec: {{type: service, lifecycle: production, owner: team-{number % TEAMS}}}\n"
        )
    path.write_text("---\n".join(documents), encoding="utf-8")
    return path


def pin_services(settings: Settings, work: Path, services: int, versions: int) -> None:
    """Every service on main: dev unpinned, staging and prod pinned (air-quality model)."""
    files: dict[str, str] = {}
    for number in range(services):
        service = service_name(number)
        overlays = f"services/{service}/deploy/overlays"
        files[f"services/{service}/deploy/base/kustomization.yaml"] = "resources: []\n"
        files[f"{overlays}/dev/kustomization.yaml"] = "resources:\n  - ../../base\n"
        for env, version in (("staging", STAGING), ("prod", PROD)):
            files[f"{overlays}/{env}/kustomization.yaml"] = (
                "resources:\n  - ../../base\npatches:\n  - path: model.yaml\n"
            )
            model = f"{service}-{KINDS[0]}"
            files[f"{overlays}/{env}/{PIN_FILE}"] = pin_text(
                service, env, model, str(min(version, versions))
            )
    push_to_main(settings, work, files, "bench services with model pins")


# --------------------------------------------------------------------------- the portal


def served_app() -> FastAPI:
    """The app uvicorn serves (``--factory``): settings from the ``PORTAL_*`` environment."""
    return create_app(Settings())


# --------------------------------------------------------------------------- measures


def row(name: str, seconds: list[float], note: str = "") -> float:
    ms = [value * 1000 for value in seconds]
    p50, p95 = percentile(ms, 0.5), percentile(ms, 0.95)
    print(f"{name:<52}{len(ms):>5}{p50:>10.1f}{p95:>10.1f}{max(ms):>10.1f}  {note}")
    return p95


def direct_search(url: str, runs: int) -> list[float]:
    samples = []
    with httpx.Client(base_url=f"{url}/api/2.0/mlflow/", timeout=120) as client:
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get("registered-models/search", params={"max_results": 1000})
            response.read()
            samples.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"registered-models/search answered {response.status_code}")
    return samples


def refreshes(url: str, settings: Settings, engine: Engine, runs: int) -> tuple[list[float], str]:
    """Time the overview's refresh in process; say which MLflow calls one makes."""
    transport = CountingTransport()
    with MlflowRegistry(url, 120, transport) as registry:
        gitops = ChangesRuntime(settings).request_gitops  # what create_app gives the pages
        runtime = RegistryRuntime(registry, engine, gitops, settings.environments)
        samples = []
        for _ in range(runs):
            runtime.forget()
            started = time.perf_counter()
            runtime.loaded()
            samples.append(time.perf_counter() - started)
        models = len(runtime.overview().models)
    calls = ", ".join(f"{count // runs} {path}" for path, count in sorted(transport.paths.items()))
    return samples, f"{models} models; MLflow calls per refresh: {calls}"


def measure(args: argparse.Namespace, url: str, root: Path) -> None:
    names = model_names(args.models)
    services = (args.models + len(KINDS) - 1) // len(KINDS)
    env = {
        "PORTAL_DATA_DIR": str(root / "var"),
        "PORTAL_CATALOG_PATHS": str(write_catalog(root / "catalog.yaml", services)),
        "PORTAL_SECRET_KEY": "models-benchmark",
        "PORTAL_GITOPS_SEED_DIR": str(REPO / "gitops-repo"),
        "PORTAL_TEMPLATES_DIR": str(REPO / "templates"),
        "PORTAL_RUN_WORKER": "false",
        "PORTAL_MLFLOW_URL": url,
    }
    os.environ.update(env)
    settings = Settings()
    report = initialise(settings, gitops=True)
    if report is None or report.problems:
        raise SystemExit(f"the catalog import failed: {report}")
    pin_services(settings, root / "work", services, args.versions)
    engine = make_engine(settings)
    print(f"{'measure (ms)':<52}{'n':>5}{'p50':>10}{'p95':>10}{'max':>10}")
    row("MLflow registered-models/search (direct)", direct_search(url, args.direct_runs))
    samples, said = refreshes(url, settings, engine, max(3, args.direct_runs // 4))
    row("overview refresh in process (MLflow, catalog, pins)", samples, said)
    engine.dispose()
    with served("benchmarks.models:served_app", env) as port:
        first, body = get(port, "/models")
        if names[0].encode() not in body or names[-1].encode() not in body:
            raise SystemExit("/models does not list the first and last model")
        row("GET /models first (waits for the refresh)", [first], f"{len(body):,} bytes")
        # At least three refresh periods, so background refreshes run among the requests.
        started, warm = time.perf_counter(), list[float]()
        while len(warm) < args.runs or time.perf_counter() - started < 3 * OVERVIEW_SECONDS:
            warm.append(get(port, "/models")[0])
        took = time.perf_counter() - started
        said = f"over {took:.1f} s: ~{took / OVERVIEW_SECONDS:.0f} background refreshes"
        p95 = row("GET /models warm", warm, said)
        row("GET /api/models", [get(port, "/api/models")[0] for _ in range(args.runs // 4)])
        page = f"/models/{names[0]}"
        details = [get(port, page)[0] for _ in range(max(5, args.runs // 10))]
        row(f"GET {page} ({args.versions} versions, metrics)", details)
    verdict = "PASS" if p95 < TARGET_P95_MS else "FAIL"
    print(
        f"/models warm with {args.models} models x {args.versions} versions: "
        f"p95 {p95:.1f} ms (< {TARGET_P95_MS:g} ms: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--detailed", type=int, default=4, help="models with a run a version")
    parser.add_argument("--runs", type=int, default=200, help="timed GET /models")
    parser.add_argument("--direct-runs", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the filled MLflow here")
    args = parser.parse_args()
    executable = find_mlflow(None)
    if executable is None:
        raise SystemExit("MLflow is not installed: run `make tools`")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.2f} before")
    names = model_names(args.models)
    with tempfile.TemporaryDirectory(prefix="models-bench-") as scratch:
        root = Path(scratch)
        folder = args.keep.resolve() if args.keep else root / "mlflow"
        with LocalMlflow(folder, executable=executable) as server:
            if filled(server.url, names, args.versions):
                print(f"MLflow in {folder}: already filled")
            else:
                seconds, calls = fill(server.url, names, args.versions, args.detailed)
                print(
                    f"filled {args.models} models x {args.versions} versions in {seconds:.0f} s "
                    f"({calls:,} REST calls, {seconds / calls * 1000:.1f} ms each)"
                )
            measure(args, server.url, root)
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
