"""checkov kept warm: the same findings as the command, scans at once, no scan ever lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from portal.integrations import checkov_warm
from portal.integrations.checkov import CheckovCli, CheckovError
from portal.integrations.checkov_warm import (
    WarmCheckov,
    checkov_python,
    release_warm_checkov,
    shared_warm_checkov,
)
from portal.integrations.processes import process_alive
from tests.conftest import REPO
from tests.integrations.test_checkov import DEPLOYMENT

MANIFESTS = {"dev.yaml": yaml.safe_dump(DEPLOYMENT), "prod.yaml": yaml.safe_dump(DEPLOYMENT)}


def script(path: Path, first_line: str) -> Path:
    path.write_text(f"{first_line}\nprint('never run')\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_the_interpreter_is_read_from_the_console_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = Path(sys.executable)
    assert checkov_python(script(tmp_path / "a", f"#!{python}")) == python
    monkeypatch.setenv("PATH", str(python.parent))
    env_form = script(tmp_path / "b", f"#!/usr/bin/env {python.name}")
    assert checkov_python(env_form) == python.parent / python.name
    assert checkov_python(script(tmp_path / "c", "#!/bin/sh")) is None  # a wrapper: run cold
    assert checkov_python(script(tmp_path / "d", "#!python")) is None  # not absolute
    assert checkov_python(script(tmp_path / "e", "print(1)")) is None
    assert checkov_python(tmp_path / "missing") is None


@pytest.mark.integration
def test_warm_scans_find_what_the_command_finds(checkov_executable: Path) -> None:
    warm = WarmCheckov(checkov_executable, ["CKV_K8S_43"])
    try:
        assert warm.start(), warm.unavailable
        found = warm.scan(MANIFESTS)
        again = warm.scan(MANIFESTS)  # a second child: nothing left over from the first
    finally:
        warm.close()
    cold = CheckovCli(checkov_executable, ["CKV_K8S_43"]).scan(MANIFESTS)
    assert found == cold == again
    assert "CKV_K8S_16" in {failure.check_id for failure in found}
    assert "CKV_K8S_43" not in {failure.check_id for failure in found}  # waived, as cold


@pytest.mark.integration
def test_scans_of_several_changes_run_at_once(checkov_executable: Path) -> None:
    warm = WarmCheckov(checkov_executable)
    manifests = [
        {"dev.yaml": yaml.safe_dump(DEPLOYMENT)},
        {"prod.yaml": yaml.safe_dump(DEPLOYMENT)},
        MANIFESTS,
        {"staging.yaml": yaml.safe_dump({**DEPLOYMENT, "metadata": {"name": "x"}})},
    ]
    try:
        assert warm.start()
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(warm.scan, manifests))
    finally:
        warm.close()
    for given, failures in zip(manifests, results, strict=True):
        assert failures, given
        assert {failure.file for failure in failures} == set(given)  # each its own report


def server_pid(warm: WarmCheckov) -> int:
    server = warm._server  # the process the test kills, as a crash would
    assert server is not None
    return server.process.pid


@pytest.mark.integration
def test_a_server_that_died_is_replaced_and_the_scan_still_runs(checkov_executable: Path) -> None:
    warm = WarmCheckov(checkov_executable)
    try:
        assert warm.start()
        first = server_pid(warm)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_alive(first) and time.monotonic() < deadline:
            time.sleep(0.05)
        found = warm.scan(MANIFESTS)  # by the command, or by a new server
        again = warm.scan(MANIFESTS)
        assert server_pid(warm) != first
        assert process_alive(server_pid(warm))
    finally:
        warm.close()
    assert "CKV_K8S_16" in {failure.check_id for failure in found}
    assert found == again


@pytest.mark.integration
def test_a_scan_past_its_timeout_is_killed_and_reported(checkov_executable: Path) -> None:
    warm = WarmCheckov(checkov_executable, timeout=0.001)
    try:
        assert warm.start()
        with pytest.raises(CheckovError, match=r"took longer than 0\.001 s"):
            warm.scan(MANIFESTS)
        # The server is still usable: the next scan gets its full time.
        warm.timeout = 120
        assert warm.scan(MANIFESTS)
    finally:
        warm.close()


def test_a_checkov_that_is_not_a_python_script_runs_as_a_command(tmp_path: Path) -> None:
    fake = tmp_path / "checkov"
    fake.write_text("#!/bin/sh\necho boom >&2\nexit 2\n", encoding="utf-8")
    fake.chmod(0o755)
    warm = WarmCheckov(fake)
    assert not warm.start()
    with pytest.raises(CheckovError, match="exited with 2: boom"):
        warm.scan({"dev.yaml": "kind: Namespace"})


def test_a_server_that_cannot_start_leaves_scans_to_the_command(tmp_path: Path) -> None:
    # A Python that cannot import checkov: the server fails, the command still answers.
    fake = tmp_path / "checkov"
    fake.write_text(
        f"#!{sys.executable}\nimport sys\nprint('boom', file=sys.stderr)\nsys.exit(2)\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    warm = WarmCheckov(fake)
    assert not warm.start()
    assert warm.unavailable is not None and "did not start" in warm.unavailable
    assert "No module named 'checkov'" in warm.unavailable  # the server's own last words
    with pytest.raises(CheckovError, match="exited with 2: boom"):
        warm.scan({"dev.yaml": "kind: Namespace"})


def test_runtimes_of_one_process_share_a_warm_checkov_until_the_last_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkov_warm, "_kept", False)  # as in the portal, not the test run
    executable = tmp_path / "checkov"
    executable.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    first, second = shared_warm_checkov(executable, ["A"]), shared_warm_checkov(executable, ["A"])
    other = shared_warm_checkov(executable, ["B"])  # other waivers: its own
    assert first is second and other is not first and other.cold.skip_checks == ("B",)
    release_warm_checkov(first)
    assert shared_warm_checkov(executable, ["A"]) is first  # one runtime still uses it
    release_warm_checkov(first)
    release_warm_checkov(second)  # the last user: stopped and forgotten
    again = shared_warm_checkov(executable, ["A"])
    assert again is not first
    for warm in (again, other):
        release_warm_checkov(warm)
    monkeypatch.setattr(checkov_warm, "_kept", True)  # as in the test run: kept after use
    kept = shared_warm_checkov(executable, ["C"])
    release_warm_checkov(kept)
    assert shared_warm_checkov(executable, ["C"]) is kept


PORTAL_THAT_DIES = """
import sys, time
from pathlib import Path
from portal.integrations.checkov_warm import WarmCheckov
warm = WarmCheckov(Path(sys.argv[1]))
assert warm.start()
print(warm._server.process.pid, warm._server.home, flush=True)
time.sleep(600)
"""


@pytest.mark.integration
def test_the_server_ends_with_the_portal_even_after_kill_9(checkov_executable: Path) -> None:
    portal = subprocess.Popen(
        [sys.executable, "-c", PORTAL_THAT_DIES, str(checkov_executable)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert portal.stdout is not None
        pid, home = portal.stdout.readline().split()
        server = int(pid)
        assert process_alive(server) and Path(home).is_dir()
        portal.kill()
        portal.wait()
        deadline = time.monotonic() + 10
        while process_alive(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(server)
        assert not Path(home).exists()  # nobody else would remove it
    finally:
        if portal.poll() is None:
            portal.kill()
            portal.wait()
        if portal.stdout is not None:
            portal.stdout.close()
