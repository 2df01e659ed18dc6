"""Backstage's ``$text``, ``$json`` and ``$yaml`` placeholders, resolved from the catalog's files.

A mapping with one key, ``$text``, ``$json`` or ``$yaml``, and a string value is replaced
by the file it names, anywhere in a document (``description: {$text: ./README.md}``,
``definition: {$json: ./openapi.json}``), as Backstage's placeholder processor does. Other
one-key ``$`` mappings (JSON Schema's ``$ref``) and non-string values stay as written.

The file is found relative to the file that holds the document, in the same repository and
ref for git locations, and must lie inside the imported root's folder or below the holder's
own folder: a ``../../etc/passwd`` is a problem, not a read. Remote URLs are never fetched
(the portal runs air-gapped): they are a problem naming the field, and the placeholder is
kept as written, as it is for every placeholder that cannot be resolved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.catalog.locations import LocationError, SourceLocation
from portal.catalog.parse import YamlStream
from portal.integrations.git import GitFileReader

RESOLVERS = frozenset({"$text", "$json", "$yaml"})

KeyPath = tuple[str | int, ...]


class PlaceholderError(ValueError):
    """A placeholder that cannot be resolved; the message says why."""


@dataclass(frozen=True)
class PlaceholderProblem:
    """One placeholder left as written: the path of its mapping, its key and why."""

    path: KeyPath
    key: str
    message: str


@dataclass
class PlaceholderReader:
    """Reads placeholder files for one import run, each file once, within the size limits."""

    git: GitFileReader
    max_file_bytes: int
    max_aliases: int
    _texts: dict[str, str | LocationError] = field(default_factory=dict)

    def read(self, location: SourceLocation) -> str:
        """Return the file's text (cached for the run); :class:`LocationError` if unreadable."""
        cached = self._texts.get(location.key)
        if cached is None:
            try:
                cached = location.read(self.git, self.max_file_bytes)
            except LocationError as exc:
                cached = exc
            self._texts[location.key] = cached
        if isinstance(cached, LocationError):
            raise cached
        return cached


@dataclass
class _Document:
    """What resolving one document needs, and what it found so far."""

    reader: PlaceholderReader
    holder: SourceLocation
    boundary: Path | None
    problems: list[PlaceholderProblem] = field(default_factory=list)
    bytes_read: int = 0


def may_hold_placeholders(text: str) -> bool:
    r"""Whether YAML ``text`` can hold a placeholder: a ``$``, written or escaped, is in it.

    A ``$`` in a parsed key comes from the text itself or from a double-quoted escape
    (``\x24``, ``\u0024``, ``\U00000024``), so a file without any of them has no
    placeholder and its documents need no walk.
    """
    return any(mark in text for mark in ("$", "\\x24", "\\u0024", "\\U00000024"))


def resolve_placeholders(
    data: dict[str, Any],
    holder: SourceLocation,
    boundary: Path | None,
    reader: PlaceholderReader,
) -> tuple[dict[str, Any], list[PlaceholderProblem]]:
    """Return ``data`` with its placeholders resolved, and the ones that could not be.

    ``boundary`` is the imported root's folder for local files (None for git, where the
    repository is the boundary). ``data`` itself is never changed: a document without
    placeholders comes back as the same object.
    """
    document = _Document(reader, holder, boundary)
    resolved = _walk(data, (), document)
    return resolved, document.problems


def _walk(value: Any, path: KeyPath, document: _Document) -> Any:
    # Most documents hold no placeholder: only a changed branch is copied, so they are
    # walked without building anything.
    if isinstance(value, dict):
        if len(value) == 1:
            [(key, target)] = value.items()
            if key in RESOLVERS and isinstance(target, str):
                try:
                    return _resolve(key, target, document)
                except PlaceholderError as exc:
                    document.problems.append(PlaceholderProblem(path, key, str(exc)))
                    return value
        copy: dict[str, Any] | None = None
        for key, item in value.items():
            if isinstance(item, dict | list):
                new = _walk(item, (*path, key), document)
                if new is not item:
                    copy = copy if copy is not None else dict(value)
                    copy[key] = new
        return value if copy is None else copy
    if isinstance(value, list):
        entries: list[Any] | None = None
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                new = _walk(item, (*path, index), document)
                if new is not item:
                    entries = entries if entries is not None else list(value)
                    entries[index] = new
        return value if entries is None else entries
    return value


def _resolve(key: str, target: str, document: _Document) -> Any:
    shown = f"{key} placeholder {target[:300]!r}"
    if "://" in target or target.startswith("git+"):
        raise PlaceholderError(
            f"{shown} is not fetched: remote placeholders are never read (air-gapped "
            "portal); use a path relative to this file"
        )
    try:
        location = document.holder.resolve(target)
    except LocationError as exc:
        raise PlaceholderError(f"{shown}: {exc}") from None
    if location.scheme == "file" and not _inside(location, document):
        where = document.boundary or Path(document.holder.path).parent
        raise PlaceholderError(f"{shown} points outside {where}; it is not read")
    try:
        text = document.reader.read(location)
    except LocationError as exc:
        raise PlaceholderError(f"{shown}: {exc}") from None
    document.bytes_read += len(text.encode())
    limit = document.reader.max_file_bytes
    if document.bytes_read > limit:
        raise PlaceholderError(
            f"{shown}: the document's placeholders read more than the {limit} byte limit"
        )
    if key == "$text":
        return text
    if key == "$json":
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PlaceholderError(f"{shown}: not valid JSON: {exc}") from None
    return _one_yaml_document(shown, text, document.reader.max_aliases)


def _inside(location: SourceLocation, document: _Document) -> bool:
    """Whether a local placeholder file lies in the root's folder or below its holder's."""
    path = Path(location.path)
    folders = [Path(document.holder.path).parent]
    if document.boundary is not None:
        folders.append(document.boundary)
    return any(path.is_relative_to(folder) for folder in folders)


def _one_yaml_document(shown: str, text: str, max_aliases: int) -> Any:
    stream = YamlStream(text, max_aliases=max_aliases)
    documents = [document.data for document in stream]
    if stream.error:
        line = f" line {stream.error_line}" if stream.error_line else ""
        raise PlaceholderError(f"{shown}{line}: {stream.error}")
    if len(documents) > 1:
        raise PlaceholderError(f"{shown}: holds {len(documents)} YAML documents, not one")
    return documents[0] if documents else None
