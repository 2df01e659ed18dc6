"""Reading catalog sources for an import: follow Locations, parse, validate; the store writes."""

from __future__ import annotations

import gc
import hashlib
import json
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.catalog.locations import LocationError, SourceLocation, parse_location
from portal.catalog.models import ProblemReport
from portal.catalog.parse import YamlStream
from portal.catalog.refs import EntityRef, RefError, parse_ref
from portal.catalog.relations import RelationRow, compute_relations, ref_field_errors
from portal.catalog.validate import KNOWN_KINDS, FieldError, validate_document
from portal.integrations.git import GitFileReader
from portal.yaml_source import YamlDocument

MAX_DEPTH = 20


@dataclass
class ParsedEntity:
    """A valid entity read from a source, with everything the store needs."""

    ref: EntityRef
    document: dict[str, Any]
    source_key: str
    doc_index: int
    line: int
    known_kind: bool
    relations: list[RelationRow]
    content_hash: str


@dataclass
class ReadResult:
    """Everything one import run read, before anything is written."""

    root_keys: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # source key -> root key
    unreadable: set[str] = field(default_factory=set)
    entities: list[ParsedEntity] = field(default_factory=list)
    rejected_refs: set[str] = field(default_factory=set)
    problems: list[ProblemReport] = field(default_factory=list)


@dataclass
class Limits:
    """Bounds that protect the portal from huge or malicious YAML."""

    max_file_bytes: int = 2 * 1024 * 1024
    max_aliases: int = 100


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one bulk step of an import.

    An import builds a few hundred thousand long-lived objects (documents, refs, relations);
    each full collection re-scans all of them, which cost a 10,000-entity import about a
    tenth of its time. Reference counting still frees everything as usual; the collector is
    re-enabled (if it was on) when the step ends, whatever happens.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_sources(roots: list[str], git: GitFileReader, limits: Limits) -> ReadResult:
    """Read every root (file, directory or git file) and every Location reachable from it."""
    with cyclic_gc_paused():
        return _read_sources(roots, git, limits)


def _read_sources(roots: list[str], git: GitFileReader, limits: Limits) -> ReadResult:
    result = ReadResult()
    seen_refs: dict[str, str] = {}
    visited: set[str] = set()
    queue: deque[tuple[SourceLocation, str, int]] = deque()
    for root in roots:
        try:
            location = parse_location(root)
        except LocationError as exc:
            result.problems.append(ProblemReport(root, str(exc)))
            continue
        result.root_keys.append(location.key)
        for child in _expand_directory(location):
            queue.append((child, location.key, 0))
    while queue:
        location, root_key, depth = queue.popleft()
        if location.key in visited:
            continue
        visited.add(location.key)
        result.sources[location.key] = root_key
        if depth > MAX_DEPTH:
            result.problems.append(ProblemReport(location.key, "Location chain is too deep"))
            continue
        try:
            text = location.read(git, limits.max_file_bytes)
        except LocationError as exc:
            result.unreadable.add(location.key)
            result.problems.append(ProblemReport(location.key, str(exc)))
            continue
        # Documents are handled as they are read, so each node tree is dropped right away.
        stream = YamlStream(text, max_aliases=limits.max_aliases)
        for document in stream:
            for target in _read_document(document, location, git, limits, seen_refs, result):
                queue.append((target, root_key, depth + 1))
        if stream.error:
            result.problems.append(
                ProblemReport(location.key, stream.error, stream.count, stream.error_line)
            )
    return result


def _expand_directory(location: SourceLocation) -> list[SourceLocation]:
    if location.scheme == "file" and Path(location.path).is_dir():
        folder = Path(location.path)
        files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
        return [SourceLocation("file", str(file)) for file in files]
    return [location]


def _read_document(
    document: YamlDocument,
    location: SourceLocation,
    git: GitFileReader,
    limits: Limits,
    seen_refs: dict[str, str],
    result: ReadResult,
) -> list[SourceLocation]:
    """Validate one document, record it or its problems, and return Location targets."""
    if document.data is None:
        return []
    checked = validate_document(document.data)
    if isinstance(checked, list):
        _reject(result, location, document, checked, _identity(document.data))
        return []
    envelope = checked.envelope
    ref = EntityRef(
        KNOWN_KINDS.get(envelope.kind.lower(), envelope.kind),
        envelope.metadata.namespace,
        envelope.metadata.name,
    )
    spec = envelope.spec or {}
    ref_errors = ref_field_errors(ref.kind, spec)
    if ref_errors:
        _reject(result, location, document, ref_errors, ref.key)
        return []
    if ref.key in seen_refs:
        result.problems.append(
            ProblemReport(
                location.key,
                f"{ref} is already defined in {seen_refs[ref.key]}; this copy is ignored",
                document.index,
                document.line,
                "metadata.name",
                ref.key,
            )
        )
        return []
    seen_refs[ref.key] = location.key
    data: dict[str, Any] = document.data
    data = _resolve_placeholders(data, location, git, limits, result, document)
    digest = hashlib.sha256(
        json.dumps([data, location.key], sort_keys=True, default=str).encode()
    ).hexdigest()
    result.entities.append(
        ParsedEntity(
            ref=ref,
            document=data,
            source_key=location.key,
            doc_index=document.index,
            line=document.line,
            known_kind=checked.known_kind,
            relations=compute_relations(ref, spec),
            content_hash=digest,
        )
    )
    if ref.kind != "Location":
        return []
    return _location_targets(spec, location, document, result)


def _identity(data: Any) -> str | None:
    """Best-effort ref of an invalid document, so its stored version is kept, not orphaned."""
    try:
        metadata = data["metadata"]
        return parse_ref(
            str(metadata["name"]),
            default_kind=str(data["kind"]),
            default_namespace=str(metadata.get("namespace", "default")),
        ).key
    except (KeyError, TypeError, AttributeError, RefError):
        return None


def _reject(
    result: ReadResult,
    location: SourceLocation,
    document: YamlDocument,
    errors: list[FieldError],
    identity: str | None,
) -> None:
    if identity:
        result.rejected_refs.add(identity)
    for error in errors:
        result.problems.append(
            ProblemReport(
                location.key,
                error.message,
                document.index,
                document.line_of(error.path),
                error.dotted,
                identity,
            )
        )


def _location_targets(
    spec: dict[str, Any], location: SourceLocation, document: YamlDocument, result: ReadResult
) -> list[SourceLocation]:
    targets = [spec["target"]] if isinstance(spec.get("target"), str) else []
    targets += [t for t in spec.get("targets", []) if isinstance(t, str)]
    resolved: list[SourceLocation] = []
    for index, target in enumerate(targets):
        try:
            resolved.append(location.resolve(target))
        except LocationError as exc:
            path: list[str | int] = ["spec", "targets", index] if "targets" in spec else ["spec"]
            result.problems.append(
                ProblemReport(
                    location.key, str(exc), document.index, document.line_of(path), "spec.targets"
                )
            )
    return resolved


def _resolve_placeholders(
    data: dict[str, Any],
    location: SourceLocation,
    git: GitFileReader,
    limits: Limits,
    result: ReadResult,
    document: YamlDocument,
) -> dict[str, Any]:
    """Replace ``spec.definition: {$text: ./file}`` with the file's text, as Backstage does."""
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return data
    definition = spec.get("definition")
    if not (isinstance(definition, dict) and set(definition) == {"$text"}):
        return data
    target = definition["$text"]
    if not isinstance(target, str) or "://" in target:
        return data  # remote placeholders stay as they are: nothing is fetched from outside
    try:
        text = location.resolve(target).read(git, limits.max_file_bytes)
    except LocationError as exc:
        result.problems.append(
            ProblemReport(
                location.key,
                f"$text placeholder {target!r}: {exc}",
                document.index,
                document.line_of(["spec", "definition"]),
                "spec.definition",
            )
        )
        return data
    return {**data, "spec": {**spec, "definition": text}}
