"""Reading a local catalog file: regular files only, and never more than the size limit.

``stat`` says 0 bytes for ``/dev/zero`` and a FIFO, so a size check before reading bounds
nothing: the read itself is bounded (limit + 1 bytes, to tell "exactly at" from "over").
Special files are refused from their ``stat`` before they are opened (opening a FIFO waits
for a writer; opening some devices has effects), and the opened file is checked again, in
case the path was swapped in between.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnreadableFileError(ValueError):
    """Raised for a path that is not a readable regular file within the limit."""


def _kind(mode: int) -> str | None:
    """Return what a non-regular file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory, not a YAML file"
    kinds = {
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    name = next((name for test, name in kinds.items() if test(mode)), "a special file")
    return f"{name}, not a regular file"


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """Return the bytes of the regular file at ``path``; the error says why it cannot."""
    try:
        kind = _kind(os.stat(path).st_mode)
        if kind:
            raise UnreadableFileError(f"is {kind}")
        # O_NONBLOCK: if a FIFO was swapped in after the stat, open returns instead of waiting.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UnreadableFileError("file not found") from None
    except OSError as exc:
        raise UnreadableFileError(f"cannot read: {exc.strerror}") from exc
    with os.fdopen(descriptor, "rb") as file:
        kind = _kind(os.fstat(descriptor).st_mode)
        if kind:
            raise UnreadableFileError(f"is {kind}")
        try:
            data = file.read(max_bytes + 1)
        except OSError as exc:
            raise UnreadableFileError(f"cannot read: {exc.strerror}") from exc
    if len(data) > max_bytes:
        raise UnreadableFileError(f"file is larger than the {max_bytes} byte limit")
    return data
