"""The model pins of many services on one commit, read with two git commands in all.

:func:`portal.models.pins.read_pins` reads one service through a ``FileReader``; calling
it with the GitOps clone itself costs a git command per listing and per pin file, which
for the Models page (every service with a model) would be hundreds. :class:`TreeReader`
answers those reads from one listing of the commit's tree and one batch read of the pin
files' blobs instead. A pin file that is a symbolic link is read as its link text (git's
blob), never followed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from portal.integrations.gitops_blobs import read_blobs, tree_blobs
from portal.models.pins import PIN_FILE, Pin, read_pins

PIN_PATH = re.compile(
    r"^services/(?P<service>[^/]+)/deploy/overlays/[^/]+/" + re.escape(PIN_FILE) + "$"
)


def _service_of(path: str) -> str | None:
    parts = path.split("/", 2)
    return parts[1] if len(parts) >= 2 and parts[0] == "services" else None


class TreeReader:
    """The files of one commit: every path, and the content of the few that were read."""

    def __init__(self, commit: str, paths: Iterable[str], contents: Mapping[str, bytes]) -> None:
        """Answer for ``commit``: ``paths`` listed, ``contents`` readable."""
        self.commit = commit
        self._contents = dict(contents)
        self._by_service: dict[str, list[str]] = {}
        for path in sorted(paths):
            service = _service_of(path)
            if service is not None:
                self._by_service.setdefault(service, []).append(path)

    def _check(self, ref: str) -> None:
        if ref != self.commit:
            raise ValueError(f"this reader holds commit {self.commit}, not {ref}")

    def list_files(self, ref: str, prefix: str = "") -> list[str]:
        """Return the paths under the folder ``prefix`` (inside one service's folder)."""
        self._check(ref)
        folder = prefix.strip("/")
        service = _service_of(folder)
        if service is None:
            raise ValueError(f"{prefix!r} is not inside services/<name>/")
        return [
            path
            for path in self._by_service.get(service, [])
            if path.startswith(folder + "/") or path == folder
        ]

    def read_file(self, ref: str, path: str) -> bytes:
        """Return the content of ``path`` (a pin file read with the listing)."""
        self._check(ref)
        if path not in self._contents:
            raise FileNotFoundError(f"{path} was not read at {self.commit}")
        return self._contents[path]


def read_main_pins(
    git_dir: Path, commit: str, services: Iterable[str], environments: Sequence[str]
) -> dict[str, dict[str, Pin]]:
    """Return each service's pins (environment -> pin) at ``commit`` of the bare ``git_dir``.

    A service without a folder at ``commit`` gets no entry.
    """
    wanted = set(services)
    blobs = tree_blobs(git_dir, commit)
    pin_blobs = {
        path: blob
        for path, blob in blobs.items()
        if (match := PIN_PATH.fullmatch(path)) is not None and match["service"] in wanted
    }
    texts = read_blobs(git_dir, pin_blobs.values())
    reader = TreeReader(commit, blobs, {path: texts[blob] for path, blob in pin_blobs.items()})
    found: dict[str, dict[str, Pin]] = {}
    for service in sorted(wanted):
        if reader.list_files(commit, f"services/{service}"):
            found[service] = read_pins(reader, commit, service, environments)
    return found
