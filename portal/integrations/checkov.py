"""checkov's Kubernetes checks on rendered manifests, run as a separate tool.

checkov pulls botocore, whose python-dateutil pin conflicts with the kubernetes client the
portal's dependencies need, so it never shares the portal's environment: the Makefile gives
it its own virtualenv under ``.tools/checkov``, where :func:`find_checkov` looks after
``PORTAL_CHECKOV_PATH`` and before PATH. It runs offline (``--skip-download``: no call to
the Prisma Cloud API), in a scratch directory, with the portal's own secrets kept out of
its environment, and dies with the portal (:mod:`portal.integrations.processes`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from portal.integrations.processes import run_tool

CHECKOV_TIMEOUT_SECONDS = 120.0
# Where `make tools` installs checkov, relative to the checkout `portal serve` runs in.
MAKE_TOOLS_CHECKOV = Path(".tools/checkov/bin/checkov")
# The folder of a scan's scratch directory that checkov scans.
MANIFESTS = "manifests"
# Variables checkov needs to start; everything else (PORTAL_SECRET_KEY, tokens) stays out.
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


class CheckovError(RuntimeError):
    """checkov is missing, crashed, or printed something that is not its JSON report."""


@dataclass(frozen=True)
class CheckovFailure:
    """One failed checkov check on one object of one manifest file."""

    check_id: str
    check_name: str
    file: str
    resource: str
    keys: tuple[str, ...] = ()


class Checkov(Protocol):
    """Scans manifests (file name -> YAML text) and returns the failed checks."""

    def scan(self, manifests: Mapping[str, str]) -> list[CheckovFailure]:
        """Run the Kubernetes checks on the given files."""
        ...


def find_checkov(configured: Path | None = None) -> Path | None:
    """Return checkov's executable as an absolute path; None when there is none.

    The configured one (``PORTAL_CHECKOV_PATH``) when set, else the one ``make tools``
    installs (:data:`MAKE_TOOLS_CHECKOV`, under the current folder), else ``checkov`` on
    PATH. The path is absolute because checkov runs in a scratch folder of its own.
    """
    if configured is not None:
        return _executable(configured)
    found = _executable(MAKE_TOOLS_CHECKOV) or shutil.which("checkov")
    return Path(found).absolute() if found else None


def _executable(path: Path) -> Path | None:
    return path.absolute() if path.is_file() and os.access(path, os.X_OK) else None


def parse_report(text: str) -> list[CheckovFailure]:
    """Read checkov's ``-o json`` report (one framework: an object; several: a list)."""
    try:
        report: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckovError(f"checkov did not print a JSON report: {text[:200]!r}") from error
    reports = report if isinstance(report, list) else [report]
    failures: list[CheckovFailure] = []
    for entry in reports:
        if not isinstance(entry, dict):
            raise CheckovError("checkov's JSON report has an unexpected shape")
        # A scan that found no resource prints only the summary, without "results".
        failed = entry.get("results", {}).get("failed_checks", [])
        failures.extend(_failure(item) for item in failed)
    return failures


def _failure(item: Mapping[str, Any]) -> CheckovFailure:
    evaluated = (item.get("check_result") or {}).get("evaluated_keys") or []
    return CheckovFailure(
        check_id=str(item.get("check_id", "?")),
        check_name=str(item.get("check_name", "")),
        file=Path(str(item.get("file_path", ""))).name,
        resource=str(item.get("resource", "")),
        keys=tuple(str(key) for key in evaluated),
    )


def scan_arguments(skip_checks: Iterable[str] = ()) -> list[str]:
    """Return checkov's arguments (after the executable) for a scan of ``manifests/``."""
    arguments = ["--directory", MANIFESTS, "--framework", "kubernetes", "--output", "json"]
    arguments += ["--quiet", "--compact", "--skip-download"]
    skipped = tuple(skip_checks)
    if skipped:
        arguments += ["--skip-check", ",".join(skipped)]
    return arguments


def write_manifests(scratch: Path, manifests: Mapping[str, str]) -> None:
    """Write the manifests into ``scratch/manifests``, the folder checkov scans."""
    scan_dir = scratch / MANIFESTS
    scan_dir.mkdir()
    for name, text in manifests.items():
        if Path(name).name != name:
            raise ValueError(f"manifest name {name!r} must be a plain file name")
        (scan_dir / name).write_text(text, encoding="utf-8")


def checkov_env(home: Path) -> dict[str, str]:
    """Return checkov's environment: what it needs to start, and ``home`` as its HOME.

    checkov caches under HOME; a scratch folder keeps that out of the portal's home.
    """
    env = {key: os.environ[key] for key in _PASSED_ENV if key in os.environ}
    env["HOME"] = str(home)
    return env


def read_report(returncode: int, stdout: str, stderr: str) -> list[CheckovFailure]:
    """Return the failures of a finished scan, or raise ``CheckovError`` if checkov failed."""
    # checkov exits 1 when a check failed; anything else but 0 is checkov itself failing.
    if returncode not in (0, 1):
        detail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        raise CheckovError(f"checkov exited with {returncode}: {detail[0]}")
    return parse_report(stdout)


class CheckovCli:
    """The real checkov, run as a subprocess on a scratch copy of the manifests."""

    def __init__(self, executable: Path, skip_checks: Iterable[str] = ()) -> None:
        """Use ``executable``; ``skip_checks`` are check ids the platform has waived."""
        self.executable = executable
        self.skip_checks = tuple(skip_checks)

    def scan(self, manifests: Mapping[str, str]) -> list[CheckovFailure]:
        """Write the manifests to a scratch directory and run checkov once over all of them."""
        with tempfile.TemporaryDirectory(prefix="checkov-") as tmp:
            scratch = Path(tmp)
            write_manifests(scratch, manifests)
            command = [str(self.executable), *scan_arguments(self.skip_checks)]
            try:
                done = run_tool(
                    command, env=checkov_env(scratch), cwd=scratch, timeout=CHECKOV_TIMEOUT_SECONDS
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                raise CheckovError(f"checkov could not run: {error}") from error
        return read_report(done.returncode, done.stdout, done.stderr)


class FakeCheckov:
    """A fake for unit tests: reports the given failures for every scan and records the inputs."""

    def __init__(self, failures: Iterable[CheckovFailure] = ()) -> None:
        """Report ``failures`` on every scan."""
        self.failures = list(failures)
        self.scanned: list[dict[str, str]] = []

    def scan(self, manifests: Mapping[str, str]) -> list[CheckovFailure]:
        """Record the manifests and return the canned failures of the files scanned."""
        self.scanned.append(dict(manifests))
        return [failure for failure in self.failures if failure.file in manifests]
