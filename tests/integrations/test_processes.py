"""Child processes: no portal secret in their environment, and none outlives a killed portal.

The tools are stand-in executables (shell scripts) started through the real integration
code, so what is checked is exactly what checkov, promtool, kubectl, Prometheus and the
Copier workers would get.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portal.integrations import copier, gitops_run
from portal.integrations.checkov import CheckovCli
from portal.integrations.git import run_git
from portal.integrations.kubernetes import kustomize_build
from portal.integrations.processes import (
    process_alive,
    redact_credentials,
    scrubbed_env,
)
from portal.integrations.prometheus_local import LocalPrometheus, LocalPrometheusError
from portal.integrations.promtool import PromtoolCli
from tests.conftest import REPO

TOKEN = "glpat-S3cr3tT0kenValue"
SECRETS = {
    "PORTAL_GITOPS_REMOTE": f"https://oauth2:{TOKEN}@git.example.org/platform/gitops.git",
    "PORTAL_SECRET_KEY": "signing-key-value",
    "PORTAL_DATABASE_URL": "postgresql://portal:db-password-value@db/portal",
    "GITHUB_TOKEN": "ghp-token-value",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
    "PGPASSWORD": "pg-password-value",
    "SOME_API_KEY": "api-key-value",
}


def stand_in(folder: Path, name: str, body: str) -> Path:
    """Write an executable shell script ``name`` that runs ``body``."""
    script = folder / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def assert_no_secret(env_dump: str) -> None:
    names = {line.partition("=")[0] for line in env_dump.splitlines()}
    assert "PATH" in names, "the dump is not an environment"
    assert not {name for name in names if name.startswith("PORTAL_")}, names
    for name, value in SECRETS.items():
        assert name not in names and value not in env_dump, name


def test_scrubbed_env_drops_portal_settings_and_secret_names() -> None:
    env = scrubbed_env({**SECRETS, "PATH": "/bin", "LANG": "C.UTF-8", "TOKENIZER": "x"}, HOME="/h")
    assert env == {"PATH": "/bin", "LANG": "C.UTF-8", "HOME": "/h"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SECRETS["PORTAL_GITOPS_REMOTE"], "https://***@git.example.org/platform/gitops.git"),
        (f"fatal: https://{TOKEN}@host/x.git: 403", "fatal: https://***@host/x.git: 403"),
        ("ssh://git:pw-value@host/x.git", "ssh://git:***@host/x.git"),
        ("ssh://git@host/x.git and git@host:x.git", "ssh://git@host/x.git and git@host:x.git"),
        ("/srv/gitops/remote.git", "/srv/gitops/remote.git"),
    ],
)
def test_redact_credentials(text: str, expected: str) -> None:
    assert redact_credentials(text) == expected


def run_checkov(tool: Path, work: Path) -> None:
    CheckovCli(tool).scan({"service.yaml": "kind: ConfigMap\n"})


def run_promtool(tool: Path, work: Path) -> None:
    rules = work / "rules.yaml"
    rules.write_text("groups: []\n")
    PromtoolCli(tool).check_rules(rules)


def run_kubectl(tool: Path, work: Path) -> None:
    overlay = work / "overlay"
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text("resources: []\n")
    kustomize_build(overlay, kubectl=tool)


def run_prometheus(tool: Path, work: Path) -> None:
    with pytest.raises(LocalPrometheusError, match="exited"):
        LocalPrometheus(folder=work / "prometheus-data", executable=tool).start()


TOOLS: dict[str, Callable[[Path, Path], None]] = {
    "checkov": run_checkov,
    "promtool": run_promtool,
    "kubectl": run_kubectl,
    "prometheus": run_prometheus,
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.usefixtures("secrets_in_env")
def test_tools_start_without_the_portal_secrets(tool: str, tmp_path: Path) -> None:
    dump = tmp_path / "env.txt"
    # checkov must print a report; the others are fine with no output.
    script = stand_in(tmp_path, tool, f"env > '{dump}'\necho '{{}}'")
    TOOLS[tool](script, tmp_path)
    assert_no_secret(dump.read_text())


@pytest.mark.usefixtures("secrets_in_env")
def test_git_runs_without_the_portal_secrets_but_keeps_its_own_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operator's git configuration in the environment stays whole (a KEY in its name).
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "alias.dumpenv")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "!env")
    repo = tmp_path / "repo.git"
    run_git("init", "--quiet", "--bare", str(repo))
    dump = run_git("--git-dir", str(repo), "dumpenv")
    assert_no_secret(dump)
    dump = gitops_run.run(repo, "dumpenv").stdout.decode()
    assert_no_secret(dump)


@pytest.mark.usefixtures("secrets_in_env")
def test_copier_workers_start_without_the_portal_secrets() -> None:
    env = copier._worker_environment()
    assert_no_secret("\n".join(f"{name}={value}" for name, value in env.items()))


PARENT = """\
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.integrations.test_processes import TOOLS
TOOLS[{tool!r}](Path({script!r}), Path({work!r}))
"""


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def killed_parent(tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """Start a portal-like process running a tool that never ends; kill -9 it; yield the tool."""
    children: list[int] = []
    parents: list[subprocess.Popen[bytes]] = []

    def start(tool: str) -> int:
        pid_file = tmp_path / f"{tool}.pid"
        script = stand_in(tmp_path, tool, f"echo $$ > '{pid_file}'\nexec sleep 300")
        code = PARENT.format(repo=str(REPO), tool=tool, script=str(script), work=str(tmp_path))
        parent = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)
        parents.append(parent)
        wait_for(lambda: pid_file.is_file() and pid_file.read_text().strip() != "", 30, tool)
        child = int(pid_file.read_text())
        children.append(child)
        assert process_alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        return child

    yield start
    for child in children:  # the test failed: leave no sleeping stand-in behind
        if process_alive(child):
            os.kill(child, signal.SIGKILL)
    for parent in parents:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("tool", ["checkov", "promtool", "kubectl"])
def test_a_tool_dies_with_the_killed_portal(tool: str, killed_parent: Callable[[str], int]) -> None:
    child = killed_parent(tool)
    wait_for(lambda: not process_alive(child), 10, f"{tool} (pid {child}) to die")


WORKER_PARENT = """\
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from portal.integrations import copier
from tests.integrations.copier_support import make_repo
slow = "{{% for i in range(100000) %}}{{% for j in range(100000) %}}{{% endfor %}}{{% endfor %}}"
src = make_repo(Path({work!r}) / "template", extra={{"template/slow.txt.jinja": slow}})
copier.render(src, "v1.0.0", {{"name": "slow"}}, Path({work!r}) / "out", timeout=300)
"""


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_rendering_copier_worker_dies_with_the_killed_portal(tmp_path: Path) -> None:
    code = WORKER_PARENT.format(repo=str(REPO), work=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)
    workers: list[int] = []
    try:

        def worker_started() -> bool:
            workers[:] = [
                pid for pid in children_of(parent.pid) if b"copier_worker" in cmdline(pid)
            ]
            return bool(workers)

        def rendering() -> bool:
            # Busy rendering (importing Copier takes about a second of CPU): it no longer
            # reads its pipe, so only the watch on its parent can end it. The workers are
            # listed again each time: the one rendering need not be the first one seen.
            return worker_started() and max(map(cpu_seconds, workers)) > 3

        wait_for(rendering, 90, "the render to be under way")
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        wait_for(lambda: not any(map(process_alive, workers)), 10, "the workers to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for worker in workers:
            if process_alive(worker):
                os.kill(worker, signal.SIGKILL)
