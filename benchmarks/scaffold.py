"""Scaffold benchmark (issue 3): submit -> commit pushed on its branch, and the check suite.

Run ``make bench``, or ``PORTAL_CHECKOV_PATH=.tools/checkov/bin/checkov .venv/bin/python
benchmarks/scaffold.py [--runs 20]``. For each run the portal path is
timed from the request (validation, change row) until the commit is pushed on
``scaffold/<name>`` (render in the warm worker process from the template's snapshot, in
the scratch folder; Flux wiring; the commit written as one pack; push).
The baseline is what a person would do by hand on the same template: the ``copier copy``
CLI followed by ``git add`` and ``git commit`` in a clone. The review check suite (kustomize
build of every overlay, schema validation, policy, cost) is timed per change.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlmodel import Session

from portal.cli import initialise
from portal.config import Settings
from portal.cost.model import DEFAULT_PRICES
from portal.db import make_engine, migrate
from portal.integrations import copier
from portal.integrations.checkov import find_checkov
from portal.review.checks import run_manifest_checks
from portal.scaffold.jobs import _render_and_commit, environments_of, repository_environments
from portal.scaffold.request import request_scaffold
from portal.scaffold.runtime import ScaffoldRuntime

# Run as a script (`python benchmarks/scaffold.py`): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.timing import percentile

REPO = Path(__file__).resolve().parent.parent
ANSWERS = {"owner": "platform-team", "description": "Benchmark service"}


def portal_runs(settings: Settings, runs: int) -> tuple[list[float], list[float]]:
    engine = make_engine(settings)
    migrate(engine)
    runtime = ScaffoldRuntime(engine, settings)
    context = runtime.context
    context.registry.all()  # publish the templates once, as a running portal has
    context.gitops()
    copier.warm_up()
    scaffold_times: list[float] = []
    check_times: list[float] = []
    try:
        for index in range(runs + 1):
            name = f"bench-{index:03d}"
            started = time.perf_counter()
            with Session(engine) as session:
                change = request_scaffold(
                    session,
                    context.registry,
                    context.gitops(),
                    "fastapi-service",
                    {"name": name, **ANSWERS},
                    "user:default/ada.lovelace",
                    # As the form and the API do: the choices are the repository's clusters.
                    environments=repository_environments(context),
                )
                scratch = settings.resolved_scratch_dir()
                with tempfile.TemporaryDirectory(prefix="scaffold-", dir=scratch) as tmp:
                    service_dir = _render_and_commit(context, change, Path(tmp), None)
                    pushed = time.perf_counter()
                    run_manifest_checks(
                        service_dir,
                        environments_of(change, repository_environments(context)),
                        lambda _ref: True,
                        DEFAULT_PRICES,
                        context.check_tools,
                    )
                    checked = time.perf_counter()
            if index == 0:
                continue  # the first run warms caches (kubectl, git packs)
            scaffold_times.append(pushed - started)
            check_times.append(checked - pushed)
    finally:
        runtime.stop()
        engine.dispose()
    return scaffold_times, check_times


def cli_runs(settings: Settings, runs: int) -> list[float]:
    remote = settings.data_dir / "gitops" / "remote.git"
    template = settings.data_dir / "templates" / "fastapi-service.git"
    copier_cli = Path(sys.executable).parent / "copier"
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True)
        for index in range(runs + 1):
            name = f"cli-{index:03d}"
            started = time.perf_counter()
            data = [f"--data={key}={value}" for key, value in {"name": name, **ANSWERS}.items()]
            subprocess.run(
                [
                    str(copier_cli),
                    "copy",
                    "--defaults",
                    "--quiet",
                    *data,
                    str(template),
                    str(clone / "services" / name),
                ],
                check=True,
                capture_output=True,
            )
            subprocess.run(["git", "-C", str(clone), "add", "-A"], check=True)
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(clone),
                    "-c",
                    "user.name=b",
                    "-c",
                    "user.email=b@x",
                    "commit",
                    "-qm",
                    f"add {name}",
                ],
                check=True,
            )
            if index:
                times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "var",
            catalog_paths=[str(REPO / "catalog")],
            gitops_seed_dir=REPO / "gitops-repo",
            templates_dir=REPO / "templates",
            secret_key="bench",
            run_worker=False,
        )
        if find_checkov(settings.checkov_path) is None:
            sys.exit(
                "checkov not found: run `make tools` and `make bench` (or PORTAL_CHECKOV_PATH)"
            )
        initialise(settings, gitops=True)
        scaffold_times, check_times = portal_runs(settings, args.runs)
        cli_times = cli_runs(settings, args.runs)
    p50, p95 = statistics.median(scaffold_times), percentile(scaffold_times, 0.95)
    cli50, cli95 = statistics.median(cli_times), percentile(cli_times, 0.95)
    checks50, checks95 = statistics.median(check_times), percentile(check_times, 0.95)
    ratio = p50 / cli50
    print(f"runs: {args.runs} (after one warm-up run each)")
    print(f"{'measure':<52}{'p50':>10}{'p95':>10}")
    rows = [
        ("portal scaffold: submit -> commit pushed", f"{p50 * 1000:.0f}ms", f"{p95 * 1000:.0f}ms"),
        (
            "copier copy CLI + git add + git commit",
            f"{cli50 * 1000:.0f}ms",
            f"{cli95 * 1000:.0f}ms",
        ),
        ("review check suite per change (3 environments)", f"{checks50:.2f}s", f"{checks95:.2f}s"),
    ]
    for label, fifty, ninety_five in rows:
        print(f"{label:<52}{fifty:>10}{ninety_five:>10}")
    print(f"ratio portal/CLI (p50): {ratio:.2f}")
    results = [
        ("scaffold p50 < 300 ms", p50 < 0.3),
        ("scaffold p50 <= half of the CLI pair", ratio <= 0.5),
        ("all checks of a change < 10 s (p95)", checks95 < 10),
    ]
    for label, ok in results:
        print(f"{label:<40} {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
