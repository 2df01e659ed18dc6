"""Servers the portal runs as children on loopback: the local Prometheus and the local MLflow.

A :class:`ServerProcess` runs one server with its working folder, log (``<name>.log``) and
pid file (``<name>.pid``) in a folder of its own, waits until a health path answers 200
(the log's last lines in the error when it does not), and stops it with SIGTERM, then
SIGKILL after a grace period. The server runs in a session of its own, so Ctrl-C in a
terminal reaches the portal only, and every signal goes to its whole process group: a
server that runs its workers as child processes (MLflow's uvicorn) stops with them.

A server left running by a portal that was killed (SIGKILL leaves no chance to stop it) is
stopped by the next start on the same folder, but only when ``/proc/<pid>/cmdline`` names
that folder: a pid reused by another program is left alone. :class:`LocalServer` is what
the servers built on it share: the URL, the state, the stop and the context manager.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_SECONDS = 10.0
_POLL_SECONDS = 0.05
_LOG_TAIL_LINES = 5


class LocalServerError(RuntimeError):
    """A local server could not be started."""


def free_port(preferred: int = 0, *, error: type[Exception] = LocalServerError) -> int:
    """Return ``preferred`` when it can be bound on loopback, else a port the OS picks."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((LOOPBACK, candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            return port
    raise error("no free port on loopback")


def group_alive(pgid: int) -> bool:
    """Tell whether any process of the group runs (zombies waiting to be reaped do not).

    The leader may be gone while one of its children still runs: the group lives on.
    """
    wanted = str(pgid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended while we looked
        state, _ppid, group = stat.rpartition(")")[2].split()[:3]
        if group == wanted and state != "Z":
            return True
    return False


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # every member is gone already
        os.killpg(pgid, signum)


def _wait_gone(pgid: int, timeout: float, reap: Callable[[], object]) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        reap()  # our own child turns from a zombie into nothing
        if not group_alive(pgid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_SECONDS)


def stop_group(
    pgid: int, reap: Callable[[], object] = lambda: None, timeout: float = STOP_TIMEOUT_SECONDS
) -> None:
    """Stop a process group: SIGTERM, then SIGKILL for whatever still runs after ``timeout``."""
    _signal_group(pgid, signal.SIGTERM)
    if not _wait_gone(pgid, timeout, reap):
        _signal_group(pgid, signal.SIGKILL)
        _wait_gone(pgid, timeout, reap)


@dataclass
class ServerProcess:
    """One server process on loopback whose log and pid file live in ``folder``.

    ``name`` names the files and the errors (``prometheus exited with 1: ...``); ``error``
    is the exception raised when it does not start.
    """

    name: str
    folder: Path
    health_path: str
    error: type[LocalServerError] = LocalServerError
    start_timeout: float = 30.0
    stop_timeout: float = STOP_TIMEOUT_SECONDS
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def log_path(self) -> Path:
        """The server's own output (stdout and stderr)."""
        return self.folder / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        """The process id of the running server, removed when it is stopped."""
        return self.folder / f"{self.name}.pid"

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop_orphan(self, marker: str) -> None:
        """Stop a server a previous portal left on this folder (it was SIGKILLed).

        The orphan would hold the folder's data (a lock, a database) and its port. Only a
        process whose command line holds the argument ``marker``, which names this folder,
        is stopped.
        """
        try:
            pid = int(self.pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return  # no pid file, or that process is gone
        if marker.encode() not in cmdline:
            return  # the pid was reused by another program
        # It was started in a session of its own: its pid is its process group's id.
        stop_group(pid, timeout=self.stop_timeout)

    def start(self, command: Sequence[str], *, port: int, env: Mapping[str, str]) -> None:
        """Run ``command`` in the folder and wait until it answers; stopped again on failure."""
        self.port = port
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.folder,
                env=dict(env),
                start_new_session=True,  # Ctrl-C in a terminal goes to the portal only
            )
        try:
            self.pid_path.write_text(f"{self._process.pid}\n")
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def request(self, path: str, method: str = "GET") -> int:
        """Send one request to the server and return the HTTP status."""
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=2)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise self.error(
                    f"{self.name} exited with {self._process.returncode}: {self.log_tail()}"
                )
            try:
                if self.request(self.health_path) == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise self.error(
                    f"{self.name} was not ready within {self.start_timeout:g} s: {self.log_tail()}"
                )
            time.sleep(_POLL_SECONDS)

    def log_tail(self) -> str:
        """Return the last lines of the server's log on one line (for error messages)."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-_LOG_TAIL_LINES:])

    def stop(self) -> None:
        """Stop the server and its children: SIGTERM, SIGKILL after the grace period."""
        process, self._process = self._process, None
        if process is None:
            return
        stop_group(process.pid, reap=process.poll, timeout=self.stop_timeout)
        process.wait(timeout=self.stop_timeout)  # gone or a zombie: reaped at once
        # Only once it is gone: a stop cut short (a second Ctrl-C) leaves the pid file to
        # the next start, which stops the process.
        self.pid_path.unlink(missing_ok=True)


class LocalServer:
    """What a server on loopback offers its users, whatever it runs.

    Subclasses are dataclasses with the fields ``folder``, ``port`` and ``server``
    (``init=False``: built here), set the class attributes below, and implement
    :meth:`start`.
    """

    name: ClassVar[str]
    health_path: ClassVar[str]
    error: ClassVar[type[LocalServerError]]
    start_timeout: ClassVar[float]
    folder: Path
    port: int
    server: ServerProcess

    def __post_init__(self) -> None:
        """Anchor the folder: the server runs inside it, where a relative path breaks."""
        self.folder = self.folder.absolute()
        self.server = ServerProcess(
            self.name,
            self.folder,
            self.health_path,
            error=self.error,
            start_timeout=self.start_timeout,
        )

    @property
    def url(self) -> str:
        """The base URL (valid once started)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The server's own output (stdout and stderr)."""
        return self.server.log_path

    @property
    def pid_path(self) -> Path:
        """The process id of the running server, removed when it is stopped."""
        return self.server.pid_path

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.server.running

    def start(self) -> str:
        """Start the server and wait until it is ready; return its URL."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server: SIGTERM, SIGKILL after a grace period."""
        self.server.stop()

    def __enter__(self) -> Self:
        """Start on entering the block."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop on leaving the block."""
        self.stop()
