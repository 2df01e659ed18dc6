"""promtool: ``check rules`` and ``test rules`` on generated rule files and their unit tests.

The real implementation runs Prometheus' ``promtool`` binary (Debian's ``prometheus``
package ships it; ``PORTAL_PROMTOOL_PATH`` or PATH names it) with a timeout, on files the
caller wrote. ``FakePromtool`` stands in for it in unit tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from portal.integrations.processes import run_tool

PROMTOOL_TIMEOUT_SECONDS = 120.0
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME")


class PromtoolError(RuntimeError):
    """promtool could not run (missing, timed out, killed): not a verdict on the files."""


class PromtoolNotFoundError(PromtoolError):
    """No promtool executable was found."""


@dataclass(frozen=True)
class PromtoolResult:
    """promtool's verdict on one file: ``ok`` and what it printed (stdout, then stderr)."""

    ok: bool
    output: str


class Promtool(Protocol):
    """Checks Prometheus rule files and runs their unit tests."""

    def check_rules(self, path: Path) -> PromtoolResult:
        """``promtool check rules PATH``: syntax, PromQL, label names."""
        ...

    def test_rules(self, path: Path) -> PromtoolResult:
        """``promtool test rules PATH``: the unit tests of a test file."""
        ...


def find_promtool(configured: Path | None = None) -> Path | None:
    """Find promtool: ``configured``, else ``PORTAL_PROMTOOL_PATH``, else PATH; None if none."""
    if configured is None and os.environ.get("PORTAL_PROMTOOL_PATH"):
        configured = Path(os.environ["PORTAL_PROMTOOL_PATH"])
    if configured is not None:
        return configured if configured.is_file() and os.access(configured, os.X_OK) else None
    found = shutil.which("promtool")
    return Path(found) if found else None


class PromtoolCli:
    """The real promtool, run as a subprocess in the file's folder."""

    def __init__(
        self, executable: Path | None = None, timeout: float = PROMTOOL_TIMEOUT_SECONDS
    ) -> None:
        """Use ``executable`` (default: found as ``find_promtool`` does)."""
        found = find_promtool(executable)
        if found is None:
            where = str(executable) if executable else "PORTAL_PROMTOOL_PATH or PATH"
            raise PromtoolNotFoundError(
                f"promtool not found ({where}); install Prometheus' promtool "
                "(Debian/Ubuntu: apt-get install prometheus)"
            )
        self.executable = found
        self.timeout = timeout

    def _run(self, action: str, path: Path) -> PromtoolResult:
        command = [str(self.executable), action, "rules", path.name]
        env = {key: os.environ[key] for key in _PASSED_ENV if key in os.environ}
        try:
            # Unit tests name their rule files relative to themselves: run in that folder.
            done = run_tool(command, env=env, cwd=path.parent, timeout=self.timeout)
        except subprocess.TimeoutExpired as error:
            raise PromtoolError(
                f"promtool {action} rules {path.name} timed out after {self.timeout:g} s"
            ) from error
        except OSError as error:
            raise PromtoolError(f"promtool could not run: {error}") from error
        output = "\n".join(part.strip() for part in (done.stdout, done.stderr) if part.strip())
        # 1 is promtool's "the check failed"; anything else means promtool itself broke.
        if done.returncode not in (0, 1):
            raise PromtoolError(
                f"promtool {action} rules exited with {done.returncode}: {output[-400:]}"
            )
        return PromtoolResult(ok=done.returncode == 0, output=output)

    def check_rules(self, path: Path) -> PromtoolResult:
        """Run ``promtool check rules`` on one rule file."""
        return self._run("check", path)

    def test_rules(self, path: Path) -> PromtoolResult:
        """Run ``promtool test rules`` on one unit test file."""
        return self._run("test", path)


class FakePromtool:
    """A fake for unit tests: every file passes unless a canned failure names it.

    Records each call as ``(action, file name, file text)``.
    """

    def __init__(
        self,
        check_failures: Mapping[str, str] | None = None,
        test_failures: Mapping[str, str] | None = None,
    ) -> None:
        """Fail ``check``/``test`` of the named files with the given output."""
        self.check_failures = dict(check_failures or {})
        self.test_failures = dict(test_failures or {})
        self.calls: list[tuple[str, str, str]] = []

    def _answer(self, action: str, path: Path, failures: Mapping[str, str]) -> PromtoolResult:
        self.calls.append((action, path.name, path.read_text(encoding="utf-8")))
        if path.name in failures:
            return PromtoolResult(ok=False, output=failures[path.name])
        return PromtoolResult(ok=True, output="SUCCESS")

    def check_rules(self, path: Path) -> PromtoolResult:
        """Record the call; fail when ``check_failures`` names the file."""
        return self._answer("check", path, self.check_failures)

    def test_rules(self, path: Path) -> PromtoolResult:
        """Record the call; fail when ``test_failures`` names the file."""
        return self._answer("test", path, self.test_failures)

    def actions(self) -> Iterable[tuple[str, str]]:
        """Return the calls made so far as ``(action, file name)``."""
        return [(action, name) for action, name, _ in self.calls]
