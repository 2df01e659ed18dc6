"""Fleet update benchmark (issue 20): an update proposed for 50 services, until all are checked.

Run ``make bench``, or ``PORTAL_CHECKOV_PATH=.tools/checkov/bin/checkov .venv/bin/python
benchmarks/fleet.py [--services 50]``. A portal with a copy of the bundled
``fastapi-service`` template creates ``--services`` services through its own pipeline
(render, commit, checks) and merges them; a new release of the template (its minor
version bumped, a README line and a new file) is then published by a restarted portal.
Timed as a user meets it, over the JSON API of the running app with its background
workers: ``POST /api/templates/fastapi-service/updates`` until ``GET /api/updates/{batch}``
says every change is rendered (``copier update`` in a worker, the branch pushed) and
checked (every review check, checkov included). Beside it, in the same run, one service's
update render by the portal (:func:`update_service`, a warm worker) and the same update by
hand: the ``copier update`` CLI in a clean clone.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

# Run as a script (`python benchmarks/fleet.py`): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.timing import percentile
from portal.app import create_app
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.db import make_engine, migrate
from portal.integrations.checkov import find_checkov
from portal.integrations.copier_update import update_service
from portal.scaffold.jobs import process_change
from portal.scaffold.request import request_scaffold
from portal.scaffold.runtime import ScaffoldRuntime

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "fastapi-service"
ADA = {"X-Forwarded-User": "ada.lovelace", "X-Forwarded-Groups": "platform-team,platform-admins"}
TARGET_SECONDS = 180.0
POLL_SECONDS = 0.5


def next_release(folder: Path) -> str:
    """Make the template in ``folder`` its next minor release; return the new tag."""
    manifest = folder / "template.yaml"
    text = manifest.read_text()
    found = re.search(r"^version: (\d+)\.(\d+)\.(\d+)$", text, re.M)
    if found is None:
        sys.exit(f"{manifest} has no version line")
    major, minor, _patch = found.groups()
    version = f"{major}.{int(minor) + 1}.0"
    manifest.write_text(re.sub(r"^version: .*$", f"version: {version}", text, flags=re.M))
    readme = folder / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nUpdated by the fleet benchmark's release.\n")
    (folder / "template" / "CHANGES.md").write_text(f"# {version}\n\nA release for the bench.\n")
    return f"v{version}"


def create_services(settings: Settings, count: int) -> None:
    """Create ``count`` services through the pipeline and merge them, as teams would have."""
    engine = make_engine(settings)
    migrate(engine)
    runtime = ScaffoldRuntime(engine, settings)
    context = runtime.context
    try:
        repo = context.gitops()
        for index in range(count):
            name = f"fleet-{index:03d}"
            with Session(engine) as session:
                change = request_scaffold(
                    session,
                    context.registry,
                    repo,
                    TEMPLATE,
                    {"name": name, "owner": "platform-team", "description": "Fleet bench"},
                    "user:default/ada.lovelace",
                )
            process_change(context, change.id)
            repo.merge(change.branch, f"Merge {name}", ("Fleet bench", "bench@example.com"))
    finally:
        runtime.stop()
        engine.dispose()


def portal_update(settings: Settings, to_ref: str) -> tuple[float, Counter[str], Counter[str]]:
    """Propose the update for the whole fleet over the API.

    Return the seconds until every change is checked, the changes' states, and how many
    changes each check that did not pass failed (or erred) on.
    """
    with TestClient(create_app(settings)) as client:
        client.get("/api/templates")  # the app's warm-up publishes the release meanwhile
        started = time.perf_counter()
        answer = client.post(
            f"/api/templates/{TEMPLATE}/updates", json={"to_ref": to_ref}, headers=ADA
        )
        assert answer.status_code == 202, answer.text
        url = answer.json()["url"]
        while True:
            batch = client.get(url).json()
            if batch["done"]:
                break
            time.sleep(POLL_SECONDS)
        elapsed = time.perf_counter() - started
        failing: Counter[str] = Counter()
        for entry in batch["services"]:
            change = client.get(f"/api/changes/{entry['change']}", headers=ADA).json()
            failing.update(c["name"] for c in change["checks"] if c["status"] != "passed")
    states = Counter(entry["state"] for entry in batch["services"])
    return elapsed, states, failing


def one_service_files(settings: Settings, service: str) -> dict[str, bytes]:
    """Return a service's folder as it is on the GitOps main."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        remote = settings.data_dir / "gitops" / "remote.git"
        subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True)
        folder = clone / "services" / service
        return {
            path.relative_to(folder).as_posix(): path.read_bytes()
            for path in folder.rglob("*")
            if path.is_file()
        }


def by_hand(files: dict[str, bytes], template_repo: Path, to_ref: str) -> float:
    """Time ``copier update`` by hand in a clean git repository holding the service."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "service"
        for path, data in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(data)
        answers = folder / ".copier-answers.yml"
        # The recorded source is the portal's URL; by hand one points Copier at the repo.
        answers.write_text(
            re.sub(
                r"^_src_path: .*$", f"_src_path: {template_repo}", answers.read_text(), flags=re.M
            )
        )
        git = ["git", "-C", str(folder), "-c", "user.name=b", "-c", "user.email=b@x"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "service"], check=True)
        settings = Path(tmp) / "copier-settings.yml"
        settings.write_text("{}\n")
        copier_cli = Path(sys.executable).parent / "copier"
        started = time.perf_counter()
        subprocess.run(
            [
                str(copier_cli),
                "update",
                "--defaults",
                "--conflict",
                "inline",
                "--vcs-ref",
                to_ref,
                ".",
            ],
            cwd=folder,
            env={**os.environ, "COPIER_SETTINGS_PATH": str(settings)},
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--samples", type=int, default=5, help="single-service update pairs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        templates = Path(tmp) / "templates"
        shutil.copytree(REPO / "templates" / TEMPLATE, templates / TEMPLATE)
        settings = Settings(
            data_dir=Path(tmp) / "var",
            catalog_paths=[str(REPO / "catalog")],
            gitops_seed_dir=REPO / "gitops-repo",
            templates_dir=templates,
            secret_key="bench",
            auth_mode=AuthMode.TRUSTED_HEADER,
            run_worker=False,
        )
        if find_checkov(settings.checkov_path) is None:
            sys.exit(
                "checkov not found: run `make tools` and `make bench` (or PORTAL_CHECKOV_PATH)"
            )
        initialise(settings, gitops=True)
        started = time.perf_counter()
        create_services(settings, args.services)
        setup = time.perf_counter() - started
        to_ref = next_release(templates / TEMPLATE)
        files = one_service_files(settings, "fleet-000")
        elapsed, states, failing = portal_update(
            settings.model_copy(update={"run_worker": True}), to_ref
        )
        template_repo = settings.data_dir / "templates" / f"{TEMPLATE}.git"
        source = str(template_repo)
        portal_renders, hand = [], []
        for _ in range(args.samples + 1):  # the first pair warms the worker and the caches
            began = time.perf_counter()
            update_service(source, to_ref, files)
            portal_renders.append(time.perf_counter() - began)
            hand.append(by_hand(files, template_repo, to_ref))
        portal_renders, hand = portal_renders[1:], hand[1:]
    print(f"services: {args.services} (created and merged through the pipeline in {setup:.0f} s)")
    print(f"update to {to_ref}, over the API until every change is checked: {elapsed:.1f} s")
    print(f"states: {dict(states)}")
    print(f"per service: {elapsed / args.services:.2f} s of wall time on {os.cpu_count()} cores")
    p50, p95 = statistics.median(portal_renders), percentile(portal_renders, 0.95)
    h50, h95 = statistics.median(hand), percentile(hand, 0.95)
    print(f"{'one service update':<44}{'p50':>10}{'p95':>10}")
    print(f"{'portal update render (warm worker)':<44}{p50 * 1000:>8.0f}ms{p95 * 1000:>8.0f}ms")
    print(f"{'copier update CLI by hand, clean clone':<44}{h50 * 1000:>8.0f}ms{h95 * 1000:>8.0f}ms")
    print(f"checks that did not pass: {dict(failing) or 'none'}")
    all_ready = states.get("ready", 0) == args.services and not failing
    label = f"all {args.services} ready, every check passed"
    print(f"{label:<40} {'PASS' if all_ready else 'FAIL'}")
    verdict = "PASS" if elapsed < TARGET_SECONDS else "FAIL"
    print(f"{'batch under ' + str(int(TARGET_SECONDS)) + ' s':<40} {verdict}")


if __name__ == "__main__":
    main()
