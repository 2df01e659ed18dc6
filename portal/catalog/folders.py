"""Folder locations: the catalog files of a local or git folder, read recursively to a limit.

A folder yields every ``*.yaml`` and ``*.yml`` file in it and in its subfolders, in path
order, down to :data:`MAX_FOLDER_DEPTH` levels. Names starting with a dot are skipped
(``.git``, ``.github/workflows/*.yaml``: tooling, not catalog files), and so are symbolic
links to folders, which could lead in a circle or out to the rest of the disk.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from portal.catalog.locations import LocationError, SourceLocation
from portal.integrations.git import GitError, GitFileReader
from portal.integrations.git_sources import GitFolderReader

# Catalog layouts put files a few levels down (services/<team>/<service>/catalog-info.yaml
# is three); eight leaves room for deeper monorepos, while an import of a folder that
# holds a generated tree (node_modules, vendored sources) stops long before it walks all of
# it. Folders below the limit are reported, never silently dropped.
MAX_FOLDER_DEPTH = 8

CATALOG_SUFFIXES = (".yaml", ".yml")


@dataclass
class FolderListing:
    """The catalog files found under one folder, and the folders too deep to read."""

    files: list[SourceLocation] = field(default_factory=list)
    too_deep: list[str] = field(default_factory=list)
    unlisted: list[tuple[str, str]] = field(default_factory=list)  # (folder, reason)


def list_folder(location: SourceLocation, git: GitFileReader) -> FolderListing | None:
    """Return the catalog files under ``location`` if it is a folder, else None."""
    if location.scheme == "file":
        folder = Path(location.path)
        return _local_listing(folder) if folder.is_dir() else None
    if location.path.endswith(CATALOG_SUFFIXES) or not isinstance(git, GitFolderReader):
        return None  # a file by its name: no listing needed to read it
    try:
        names = git.list_folder(location.url, location.ref, location.path)
    except GitError as exc:
        raise LocationError(str(exc)) from exc
    if names is None:
        return None
    return _git_listing(location, names)


def _is_catalog_file(name: str) -> bool:
    return name.endswith(CATALOG_SUFFIXES) and not name.startswith(".")


def _local_listing(root: Path) -> FolderListing:
    listing = FolderListing()
    found: list[Path] = []
    pending: list[tuple[Path, int]] = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            listing.unlisted.append((str(folder), f"cannot list the folder: {exc.strerror}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth < MAX_FOLDER_DEPTH:
                    pending.append((Path(entry.path), depth + 1))
                else:
                    listing.too_deep.append(entry.path)
            elif _is_catalog_file(entry.name) and not entry.is_dir():
                # Other kinds (a FIFO, a device) are kept: reading them reports what they are.
                found.append(Path(entry.path))
    listing.files = [SourceLocation("file", str(path)) for path in sorted(found)]
    listing.too_deep.sort()
    return listing


def _git_listing(location: SourceLocation, names: list[str]) -> FolderListing:
    listing = FolderListing()
    too_deep: set[str] = set()
    found: list[PurePosixPath] = []
    for name in names:
        relative = PurePosixPath(name)
        folders = relative.parts[:-1]
        if any(part.startswith(".") for part in folders):
            continue
        if len(folders) > MAX_FOLDER_DEPTH:
            too_deep.add("/".join(folders[: MAX_FOLDER_DEPTH + 1]))
        elif _is_catalog_file(relative.name):
            found.append(relative)
    base = "" if location.path == "." else location.path
    listing.files = [
        SourceLocation("git", posixpath.join(base, str(path)), location.url, location.ref)
        for path in sorted(found)
    ]
    listing.too_deep = [
        SourceLocation("git", posixpath.join(base, folder), location.url, location.ref).key
        for folder in sorted(too_deep)
    ]
    return listing
