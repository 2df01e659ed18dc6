"""Worker ids of other processes on this host, for the claim and replica tests."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


def dead_worker_id() -> str:
    """Return the worker id (``host:pid``) of a process of this host that has ended."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return f"{socket.gethostname()}:{ended.pid}"


@contextmanager
def live_worker_id() -> Iterator[str]:
    """Yield the worker id of another running process of this host (a replica beside us)."""
    other = subprocess.Popen(["sleep", "600"])
    try:
        yield f"{socket.gethostname()}:{other.pid}"
    finally:
        other.kill()
        other.wait()
