"""checkov's Kubernetes checks on rendered manifests, run as a separate tool.

checkov pulls botocore, whose python-dateutil pin conflicts with the kubernetes client the
portal's dependencies need, so it never shares the portal's environment: the Makefile gives
it its own virtualenv under ``.tools/checkov`` and ``PORTAL_CHECKOV_PATH`` (or PATH) names
the executable. It runs offline (``--skip-download``: no call to the Prisma Cloud API), in a
scratch directory, with the portal's own secrets kept out of its environment, and dies
with the portal (:mod:`portal.integrations.processes`).
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
    """Return the checkov executable: the configured one, else PATH; None when there is none."""
    if configured is not None:
        return configured if configured.is_file() and os.access(configured, os.X_OK) else None
    found = shutil.which("checkov")
    return Path(found) if found else None


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
            scan_dir = scratch / "manifests"
            scan_dir.mkdir()
            for name, text in manifests.items():
                if Path(name).name != name:
                    raise ValueError(f"manifest name {name!r} must be a plain file name")
                (scan_dir / name).write_text(text, encoding="utf-8")
            command = [str(self.executable), "--directory", "manifests", "--framework"]
            command += ["kubernetes", "--output", "json", "--quiet", "--compact"]
            command += ["--skip-download"]
            if self.skip_checks:
                command += ["--skip-check", ",".join(self.skip_checks)]
            env = {key: os.environ[key] for key in _PASSED_ENV if key in os.environ}
            env["HOME"] = str(scratch)  # checkov caches under HOME; keep that in the scratch dir
            try:
                done = run_tool(command, env=env, cwd=scratch, timeout=CHECKOV_TIMEOUT_SECONDS)
            except (OSError, subprocess.TimeoutExpired) as error:
                raise CheckovError(f"checkov could not run: {error}") from error
        # checkov exits 1 when a check failed; anything else but 0 is checkov itself failing.
        if done.returncode not in (0, 1):
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise CheckovError(f"checkov exited with {done.returncode}: {detail[0]}")
        return parse_report(done.stdout)


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
