"""A warm checkov: imports checkov once, then forks a fresh child for every scan.

Run by :class:`portal.integrations.checkov_warm.WarmCheckov` with checkov's own Python
(its virtualenv, not the portal's), so this file imports nothing of the portal. Importing
checkov takes about two seconds; a forked child starts with checkov imported and runs one
scan exactly as the ``checkov`` command would, in about 50 ms, with nothing left over from
earlier scans (each scan is a process of its own).

Protocol, one JSON object per line. Out: ``{"ready": pid}`` once checkov is imported, then
``{"id": n, "returncode": rc}`` when scan ``n`` ends (a negative ``rc``: killed by that
signal). In: ``{"id": n, "cwd": folder, "argv": [...]}`` starts a scan in ``folder``
(its report goes to ``folder/stdout``, its messages to ``folder/stderr``, its HOME is
``folder``); ``{"kill": n}`` kills scan ``n``. At the end of its input (the portal closed
the pipe, or died) the server kills its scans, removes its folder (its one argument)
and exits. The server is single-threaded on purpose: forking a process with threads is
unsafe.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import select
import shutil
import signal
import sys
import traceback
import warnings
from typing import Any

_PR_SET_PDEATHSIG = 1


def _send(message: dict[str, Any]) -> None:
    # One write per line, below PIPE_BUF: a line is never interleaved or buffered.
    os.write(1, (json.dumps(message) + "\n").encode())


def _scan(checkov: Any, request: dict[str, Any], inherited: list[int]) -> int:
    """In the forked child: run one scan; return its exit code."""
    for fd in inherited:
        os.close(fd)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the server
    folder = str(request["cwd"])
    os.chdir(folder)
    os.environ["HOME"] = folder
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        target = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    argv = [str(argument) for argument in request["argv"]]
    sys.argv = ["checkov", *argv]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=SyntaxWarning)
            code: object = checkov.Checkov(argv).run()
    except SystemExit as stop:
        code = stop.code
    except BaseException:  # reported on stderr, like the command's own traceback
        traceback.print_exc()
        code = 2
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _reap(running: dict[int, int]) -> None:
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        scan = running.pop(pid, None)
        if scan is not None:
            _send({"id": scan, "returncode": os.waitstatus_to_exitcode(status)})


def serve() -> None:
    """Import checkov, say so, then run scans until the input ends."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SyntaxWarning)
        checkov = importlib.import_module("checkov.main")
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda _signal, _frame: None)
    running: dict[int, int] = {}  # pid -> scan id
    pending = b""
    _send({"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([0, wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 512)
            _reap(running)
        if 0 not in readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            if "kill" in request:
                for pid, scan in running.items():
                    if scan == request["kill"]:
                        os.kill(pid, signal.SIGKILL)
                continue
            pid = os.fork()
            if pid == 0:  # the child never returns into this loop
                code = 3
                try:
                    code = _scan(checkov, request, [wake_read, wake_write])
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            running[pid] = int(request["id"])
    for pid in running:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if len(sys.argv) > 1:  # the server's folder, removed even when the portal was killed
        shutil.rmtree(sys.argv[1], ignore_errors=True)


if __name__ == "__main__":
    serve()
