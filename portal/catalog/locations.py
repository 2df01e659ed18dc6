"""Where catalog files live: a local path or a file inside a git repository.

A git location is written ``git+URL#REF:PATH`` (for example
``git+https://git.example.com/org/repo.git#main:catalog-info.yaml``); relative Location
targets found inside it resolve in the same repository and ref. The URL, ref and path are
checked before anything reaches git (:mod:`portal.integrations.git_args`): a ref such as
``--output=/some/file`` would otherwise be read by git as an option.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from portal.catalog.local_files import UnreadableFileError, read_regular_file
from portal.integrations.git import GitError, GitFileReader
from portal.integrations.git_args import (
    CATALOG_SCHEMES,
    GitArgumentError,
    check_ref,
    check_repo_path,
    check_url,
)


class LocationError(ValueError):
    """Raised for a location string or target that cannot be used."""


@dataclass(frozen=True)
class SourceLocation:
    """One readable catalog file."""

    scheme: str  # "file" or "git"
    path: str
    url: str = ""
    ref: str = ""

    @property
    def key(self) -> str:
        """Return the stable string that identifies this source in the database."""
        if self.scheme == "git":
            return f"git+{self.url}#{self.ref}:{self.path}"
        return self.path

    def resolve(self, target: str) -> SourceLocation:
        """Resolve a Location target relative to this file."""
        if "://" in target or target.startswith("git+"):
            if target.startswith("git+"):
                return parse_location(target)
            raise LocationError(
                f"remote target {target!r} is not fetched: the portal reads local files and "
                "git repositories only (use git+URL#REF:PATH)"
            )
        if self.scheme == "git":
            if target.startswith("/"):
                raise LocationError(f"absolute target {target!r} inside a git repository")
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(self.path), target))
            if joined.startswith(".."):
                raise LocationError(f"target {target!r} points outside the repository")
            try:
                check_repo_path(joined)
            except GitArgumentError as exc:
                raise LocationError(f"target {target!r}: {exc}") from None
            return SourceLocation("git", joined, self.url, self.ref)
        base = Path(self.path).parent
        return SourceLocation("file", str((base / target).resolve()))

    def read(self, git: GitFileReader, max_bytes: int) -> str:
        """Read the file as UTF-8 text, refusing files over ``max_bytes``."""
        if self.scheme == "git":
            try:
                data = git.read_file(self.url, self.ref, self.path)
            except GitError as exc:
                raise LocationError(str(exc)) from exc
        else:
            try:
                data = read_regular_file(Path(self.path), max_bytes)
            except UnreadableFileError as exc:
                raise LocationError(str(exc)) from None
        if len(data) > max_bytes:
            raise LocationError(f"file is larger than the {max_bytes} byte limit")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LocationError(f"not UTF-8 text (byte {exc.start})") from exc


def parse_location(text: str) -> SourceLocation:
    """Parse a local path (made absolute) or ``git+URL#REF:PATH``."""
    text = text.strip()
    if not text:
        raise LocationError("empty location")
    if text.startswith("git+"):
        rest = text[4:]
        if "#" not in rest:
            raise LocationError(f"{text!r}: a git location needs #REF:PATH after the URL")
        url, _, ref_path = rest.rpartition("#")
        ref, sep, path = ref_path.partition(":")
        if not url or not ref or not sep or not path:
            raise LocationError(f"{text!r}: expected git+URL#REF:PATH")
        path = posixpath.normpath(path.lstrip("/"))
        if path.startswith(".."):
            raise LocationError(f"{text!r}: path points outside the repository")
        try:
            check_url(url, CATALOG_SCHEMES, "repository URL")
            check_ref(ref)
            check_repo_path(path)
        except GitArgumentError as exc:
            raise LocationError(f"{text[:500]!r}: {exc}") from None
        return SourceLocation("git", path, url, ref)
    if "://" in text:
        raise LocationError(f"{text!r}: only local paths and git+URL#REF:PATH can be imported")
    return SourceLocation("file", str(Path(text).expanduser().resolve()))
