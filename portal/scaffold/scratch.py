"""Scratch folders of scaffold renders, named after the process that owns them.

A render writes into ``scaffold-<pid>-<random>`` under ``PORTAL_SCRATCH_DIR`` (``/dev/shm``
by default, where a leftover costs memory) and removes it when done. A portal killed with
``kill -9`` cannot remove its own, so each start removes those whose owner is no longer
running. A folder of a live process is never touched: the pid says whose it is.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from portal.integrations.processes import process_alive

PREFIX = "scaffold-"
_OWNED = re.compile(rf"{re.escape(PREFIX)}(?P<pid>[0-9]+)-[^/]+")


@contextmanager
def scratch_folder(parent: Path | None) -> Iterator[Path]:
    """Yield a fresh folder in ``parent`` (None: the system temp folder), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-", dir=parent) as folder:
        yield Path(folder)


def remove_abandoned(parent: Path | None) -> list[Path]:
    """Remove this user's scratch folders in ``parent`` whose process died; return them."""
    folder = Path(tempfile.gettempdir()) if parent is None else parent
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _OWNED.fullmatch(entry.name)
        if match is None or process_alive(int(match["pid"])):
            continue
        try:
            info = entry.lstat()
        except OSError:
            continue
        # /dev/shm is shared by every user of the machine: only our own folders go.
        if info.st_uid == os.getuid() and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
