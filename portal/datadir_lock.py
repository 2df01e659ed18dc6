"""One serving portal per data folder: an exclusive ``flock`` held while ``portal serve`` runs.

Two portals on one data folder would share its local Prometheus, GitOps clone and SQLite
file; the second would stop the first's Prometheus. The lock lives on an open file, so
the kernel releases it when the holder exits in any way, ``kill -9`` included: a lock is
never stale. The file also names the holder's pid, for the message the second one gets.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = "portal.lock"


class DataDirInUseError(RuntimeError):
    """Another live portal holds the data folder."""


@contextmanager
def hold_data_dir(data_dir: Path) -> Iterator[Path]:
    """Hold the data folder's lock for the block; yield the lock file's path.

    Raises :class:`DataDirInUseError` at once (no waiting) when another process holds it.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir.resolve() / LOCK_NAME
    # Not inherited by children (PEP 446), so a Prometheus that outlives a killed portal
    # does not keep the folder locked.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DataDirInUseError(
                f"the data folder {path.parent} is in use by another portal (pid {holder}); "
                "stop it first, or give this one its own PORTAL_DATA_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
