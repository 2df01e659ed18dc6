"""checkov kept warm: one server process imports it once, every scan is a fork of it.

Importing checkov takes about two seconds of the 2.1 s a scan of one change costs; the
server (:mod:`portal.integrations.checkov_zygote`, run with checkov's own Python) pays that
once, and each scan then runs in a fresh child forked from it, exactly as the ``checkov``
command would (same arguments, same scratch folder, environment and HOME), in about
50 ms. Scans of several changes run at once, each in its own child.

Whenever the warm path cannot be used (checkov's executable is not a Python script, the
server cannot start or dies) a scan runs the ``checkov`` command instead, so a scan is
never lost to the optimisation. The server reads its requests from a pipe and exits when
the portal closes it or dies; its scans die with it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from portal.integrations.checkov import (
    CHECKOV_TIMEOUT_SECONDS,
    CheckovCli,
    CheckovError,
    CheckovFailure,
    checkov_env,
    read_report,
    scan_arguments,
    write_manifests,
)

logger = logging.getLogger(__name__)

ZYGOTE = Path(__file__).with_name("checkov_zygote.py")
START_TIMEOUT_SECONDS = 60.0


def checkov_python(executable: Path) -> Path | None:
    """Return the Python interpreter of a ``checkov`` console script (None: not one).

    pip writes the interpreter of the tool's virtualenv in the script's first line.
    """
    try:
        with executable.open("rb") as script:
            first = script.readline(512).decode("utf-8", "replace")
    except OSError:
        return None
    words = first[2:].split() if first.startswith("#!") else []
    if not words:
        return None
    if Path(words[0]).name == "env" and len(words) == 2:
        found = shutil.which(words[1])
        words = [found] if found else []
    if len(words) != 1 or not Path(words[0]).name.startswith("python"):
        return None
    interpreter = Path(words[0])
    return interpreter if interpreter.is_absolute() and interpreter.is_file() else None


class ServerGoneError(RuntimeError):
    """The warm server ended (or never started); the scan has to be run cold."""


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.returncode: int | None = None


class _Server:
    """One running zygote, its reader thread and the scans waiting for it."""

    def __init__(self, python: Path) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="checkov-server-"))
        self._log = (self.home / "server.log").open("wb")
        try:
            # No pdeath signal: it would fire when the starting thread ends. The server
            # exits when its input closes, which also happens when the portal dies.
            self.process = subprocess.Popen(
                # -I: the script's folder is not put on sys.path (checkov.py there
                # would shadow checkov).
                [str(python), "-I", str(ZYGOTE), str(self.home)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                cwd=self.home,
                env=checkov_env(self.home),
            )
        except OSError:
            self._log.close()
            shutil.rmtree(self.home, ignore_errors=True)
            raise
        pipes = (self.process.stdin, self.process.stdout)
        if pipes[0] is None or pipes[1] is None:  # for mypy: both were asked for
            raise OSError("the checkov server has no pipes")
        self._input: IO[bytes] = pipes[0]
        self._output: IO[bytes] = pipes[1]
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._next = 0
        self._ready = threading.Event()
        self.alive = True
        self._reader = threading.Thread(target=self._read, name="checkov-server", daemon=True)
        self._reader.start()

    def wait_ready(self, timeout: float) -> None:
        """Wait until checkov is imported; raise ``ServerGoneError`` if it is not."""
        if not self._ready.wait(timeout) or not self.alive:
            self.process.poll()
            why = self.log_tail()
            self.close()
            raise ServerGoneError(f"the checkov server did not start: {why}")

    def scan(self, folder: Path, arguments: list[str], timeout: float) -> int:
        """Run one scan in ``folder`` and return checkov's exit code."""
        pending = _Pending()
        with self._lock:
            if not self.alive:
                raise ServerGoneError("the checkov server has ended")
            self._next += 1
            scan_id = self._next
            self._pending[scan_id] = pending
            try:
                self._send({"id": scan_id, "cwd": str(folder), "argv": arguments})
            except (OSError, ValueError) as error:  # the pipe broke: the server died
                self.alive = False
                self._pending.pop(scan_id, None)
                raise ServerGoneError(f"the checkov server has ended ({error})") from error
        try:
            if not pending.done.wait(timeout):
                with self._lock, contextlib.suppress(OSError, ValueError):
                    self._send({"kill": scan_id})
                raise CheckovError(f"checkov could not run: it took longer than {timeout:g} s")
        finally:
            with self._lock:
                self._pending.pop(scan_id, None)
        if pending.returncode is None:
            raise ServerGoneError("the checkov server ended during the scan")
        return pending.returncode

    def close(self) -> None:
        """End the server (its running scans are killed) and remove its folder."""
        with self._lock:
            self.alive = False
            with contextlib.suppress(OSError, ValueError):
                self._input.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)
        self._output.close()
        self._log.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def log_tail(self) -> str:
        """Return the last line the server printed (why it failed to start)."""
        with contextlib.suppress(OSError):
            lines = (self.home / "server.log").read_text(errors="replace").strip().splitlines()
            if lines:
                return lines[-1]
        return f"exit code {self.process.poll()}"

    def _send(self, message: dict[str, Any]) -> None:
        self._input.write((json.dumps(message) + "\n").encode())
        self._input.flush()

    def _read(self) -> None:
        try:
            for line in self._output:
                message = json.loads(line)
                if "ready" in message:
                    self._ready.set()
                    continue
                with self._lock:
                    pending = self._pending.get(int(message["id"]))
                if pending is not None:
                    pending.returncode = int(message["returncode"])
                    pending.done.set()
        except (OSError, ValueError, KeyError):
            logger.exception("checkov server output")
        with self._lock:
            self.alive = False
            waiting = list(self._pending.values())
        self._ready.set()
        for pending in waiting:  # returncode None: the scan is run cold
            pending.done.set()


class WarmCheckov:
    """The real checkov, each scan forked from a server that imported it once."""

    def __init__(
        self,
        executable: Path,
        skip_checks: Iterable[str] = (),
        *,
        timeout: float = CHECKOV_TIMEOUT_SECONDS,
    ) -> None:
        """Use ``executable`` (warm when it is a Python console script, else as a command)."""
        self.cold = CheckovCli(executable, skip_checks)
        self.timeout = timeout
        self.python = checkov_python(executable)
        # Why scans run cold from now on (a server that cannot start is not retried).
        self.unavailable: str | None = None if self.python else "not a Python console script"
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def start(self) -> bool:
        """Start the server now (it takes about 2 s) unless it runs; return whether it does."""
        return self._running() is not None

    def scan(self, manifests: Mapping[str, str]) -> list[CheckovFailure]:
        """Scan the manifests in a forked child of the server (cold when there is none)."""
        server = self._running()
        if server is None:
            return self.cold.scan(manifests)
        with tempfile.TemporaryDirectory(prefix="checkov-") as tmp:
            scratch = Path(tmp)
            write_manifests(scratch, manifests)
            try:
                returncode = server.scan(
                    scratch, scan_arguments(self.cold.skip_checks), self.timeout
                )
            except ServerGoneError:
                logger.warning("the checkov server ended; scanning with the checkov command")
                return self.cold.scan(manifests)
            stdout = (scratch / "stdout").read_text(encoding="utf-8", errors="replace")
            stderr = (scratch / "stderr").read_text(encoding="utf-8", errors="replace")
        return read_report(returncode, stdout, stderr)

    def close(self) -> None:
        """Stop the server; a later scan starts a new one."""
        with self._lock:
            server, self._server = self._server, None
        atexit.unregister(self.close)
        if server is not None:
            server.close()

    def _running(self) -> _Server | None:
        with self._lock:
            if self.unavailable is not None or self.python is None:
                return None
            if self._server is not None and self._server.alive:
                return self._server
            if self._server is not None:
                self._server.close()
                self._server = None
            try:
                server = _Server(self.python)
                server.wait_ready(START_TIMEOUT_SECONDS)
            except (OSError, ServerGoneError) as error:
                self.unavailable = str(error)
                logger.warning("checkov runs cold (%s)", error)
                return None
            self._server = server
            atexit.register(self.close)  # a CLI run ends without stopping a runtime
            return server


# One warm checkov per process and arguments, shared by the runtimes of the process (two
# replicas in one process, or the many apps of a test run), with how many use it.
_shared: dict[tuple[Path, tuple[str, ...]], tuple[WarmCheckov, int]] = {}
_shared_lock = threading.Lock()
_kept = False


def shared_warm_checkov(executable: Path, skip_checks: Iterable[str] = ()) -> WarmCheckov:
    """Return the process's warm checkov for these arguments, counting one more user."""
    key = (executable, tuple(skip_checks))
    with _shared_lock:
        warm, users = _shared.get(key) or (WarmCheckov(executable, key[1]), 0)
        _shared[key] = (warm, users + 1)
    return warm


def release_warm_checkov(warm: WarmCheckov) -> None:
    """Count one user less; the last one stops the server, unless the process keeps it."""
    key = (warm.cold.executable, warm.cold.skip_checks)
    with _shared_lock:
        held, users = _shared.get(key, (None, 0))
        if held is warm:
            users -= 1
            if users > 0 or _kept:
                _shared[key] = (warm, users)
                return
            del _shared[key]
    warm.close()


def keep_warm_checkovs() -> None:
    """Keep each shared server after its last user, until the process exits.

    For a process that starts many apps one after another (the test suite): each would
    otherwise pay the two seconds of importing checkov again.
    """
    global _kept
    _kept = True
