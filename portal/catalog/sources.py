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
from typing import Any, NamedTuple

from portal.catalog.folders import MAX_FOLDER_DEPTH, FolderListing, list_folder
from portal.catalog.known_files import KeptEntity, KnownFile, file_digest, reuse
from portal.catalog.locations import LocationError, SourceLocation, parse_location
from portal.catalog.models import ProblemReport
from portal.catalog.parse import YamlStream
from portal.catalog.placeholders import (
    PlaceholderReader,
    may_hold_placeholders,
    resolve_placeholders,
)
from portal.catalog.refs import EntityRef, RefError, parse_ref
from portal.catalog.relations import RelationRow, compute_relations, ref_field_errors
from portal.catalog.validate import KNOWN_KINDS, FieldError, validate_document
from portal.integrations.git import GitFileReader
from portal.yaml_source import YamlDocument

MAX_DEPTH = 20  # Location chain links, not folder levels


@dataclass
class ParsedEntity:
    """A valid entity read from a source, with everything the store needs."""

    ref: EntityRef
    document: dict[str, Any]
    source_key: str
    doc_index: int
    line: int  # the document's first line
    name_line: int  # the line of metadata.name, where a duplicate's problem points
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
    # Unchanged files that were not parsed again (see known_files): their entities by
    # source key, and every read file's digest.
    kept: dict[str, list[KeptEntity]] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)


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


def read_sources(
    roots: list[str],
    git: GitFileReader,
    limits: Limits,
    known: dict[str, KnownFile] | None = None,
) -> ReadResult:
    """Read every root (file, folder, git file or git folder) and every Location it leads to.

    ``known``: files read cleanly before (:func:`portal.catalog.known_files.load_known_files`);
    those whose text did not change are not parsed again.
    """
    with cyclic_gc_paused():
        return _Run(git, limits, known or {}).read(roots)


@dataclass
class _Run:
    """One import's reading: the queue of locations, what was seen, and the result."""

    git: GitFileReader
    limits: Limits
    known: dict[str, KnownFile]
    result: ReadResult = field(default_factory=ReadResult)
    seen_refs: dict[str, str] = field(default_factory=dict)  # ref -> "file line N"
    # Local roots' folders: a placeholder may read files inside its root's folder.
    boundaries: dict[str, Path] = field(default_factory=dict)
    placeholders: PlaceholderReader = field(init=False)

    def __post_init__(self) -> None:
        self.placeholders = PlaceholderReader(
            self.git, self.limits.max_file_bytes, self.limits.max_aliases
        )

    def read(self, roots: list[str]) -> ReadResult:
        result = self.result
        visited: set[str] = set()
        queue: deque[_Queued] = deque()
        for root in roots:
            try:
                location = parse_location(root)
            except LocationError as exc:
                result.problems.append(ProblemReport(root, str(exc)))
                continue
            result.root_keys.append(location.key)
            if location.scheme == "file":
                path = Path(location.path)
                self.boundaries[location.key] = path if path.is_dir() else path.parent
            queue.append(_Queued(location, location.key, 0, walked=False, named_by=None))
        while queue:
            location, root_key, depth, walked, named_by = queue.popleft()
            if location.key in visited:
                continue
            visited.add(location.key)
            if depth > MAX_DEPTH:
                result.sources[location.key] = root_key
                result.problems.append(ProblemReport(location.key, "Location chain is too deep"))
                continue
            try:
                listing = list_folder(location, self.git)
            except LocationError as exc:
                result.problems.append(ProblemReport(location.key, str(exc)))
                if location.key == root_key:
                    # Nothing of the root was read (its repository cannot be fetched): it
                    # is left out of this run, so what it yielded before is not orphaned.
                    result.root_keys = [k for k in result.root_keys if k != root_key]
                else:  # as any file that cannot be read: its entities are kept
                    result.sources[location.key] = root_key
                    result.unreadable.add(location.key)
                continue
            if listing is not None:
                # A folder is no source of its own: its files are, at the folder's depth.
                self._report_listing(location, listing, named_by or location.key)
                queue.extend(_Queued(f, root_key, depth, True, None) for f in listing.files)
                continue
            result.sources[location.key] = root_key
            for target in self._read_file(location, root_key, walked):
                queue.append(_Queued(target, root_key, depth + 1, False, location.key))
        return result

    def _report_listing(self, folder: SourceLocation, listing: FolderListing, owner: str) -> None:
        """Report a folder's problems under ``owner``: the root, or the file naming it.

        Problems are replaced when their source is read again; a folder is no source, so
        its problems belong to what the next import reads again to reach it.
        """
        problems = self.result.problems
        for path, reason in listing.unlisted:
            problems.append(ProblemReport(owner, f"{path}: {reason}"))
        for path in listing.too_deep:
            problems.append(
                ProblemReport(
                    owner,
                    f"{path} not read: deeper than {MAX_FOLDER_DEPTH} folders below {folder.key}",
                )
            )
        if not listing.files:
            where = "" if owner == folder.key else f" from {folder.key}"
            problems.append(
                ProblemReport(
                    owner,
                    f"0 files read{where}: no *.yaml or *.yml file in the folder or its "
                    f"subfolders (up to {MAX_FOLDER_DEPTH} levels down; names starting with a "
                    "dot are skipped)",
                )
            )

    def _read_file(
        self, location: SourceLocation, root_key: str, walked: bool
    ) -> list[SourceLocation]:
        """Read one catalog file; return the Location targets its documents name.

        A file found by walking a folder may be no catalog file at all (an OpenAPI spec or
        Helm values beside ``catalog-info.yaml``): its documents that are not mappings with
        an ``apiVersion`` or a ``kind`` are passed over. A file named by a root or a
        Location is a catalog file, and such documents are problems in it.
        """
        result = self.result
        try:
            text = location.read(self.git, self.limits.max_file_bytes)
        except LocationError as exc:
            result.unreadable.add(location.key)
            result.problems.append(ProblemReport(location.key, str(exc)))
            return []
        placeholders = may_hold_placeholders(text)
        digest = file_digest(text, walked, self.limits.max_file_bytes, self.limits.max_aliases)
        result.digests[location.key] = digest
        known = self.known.get(location.key)
        if known is not None and known.digest == digest and not placeholders:
            kept = reuse(known, location, self.seen_refs)
            if kept is not None:
                result.kept[location.key] = [entity for _index, entity in known.entities]
                return kept
        targets: list[SourceLocation] = []
        # Documents are handled as they are read, so each node tree is dropped right away.
        stream = YamlStream(text, max_aliases=self.limits.max_aliases)
        for document in stream:
            if walked and not _looks_like_entity(document.data):
                continue
            targets += self._read_document(document, location, root_key, placeholders)
        if stream.error:
            result.problems.append(
                ProblemReport(location.key, stream.error, stream.count, stream.error_line)
            )
        return targets

    def _read_document(
        self,
        document: YamlDocument,
        location: SourceLocation,
        root_key: str,
        placeholders: bool,
    ) -> list[SourceLocation]:
        """Validate one document, record it or its problems, and return Location targets."""
        result = self.result
        if document.data is None:
            return []
        data: Any = document.data
        if placeholders and isinstance(data, dict):
            # Placeholders first, as Backstage does: `description: {$text: ./README.md}`
            # is only a valid description once it has been replaced by the file's text.
            data = self._resolve_placeholders(data, document, location, root_key)
        checked = validate_document(data)
        if isinstance(checked, list):
            _reject(result, location, document, checked, _identity(data))
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
        name_line = document.line_of(["metadata", "name"])
        if ref.key in self.seen_refs:
            result.problems.append(
                ProblemReport(
                    location.key,
                    f"{ref} is already defined in {self.seen_refs[ref.key]}; this copy is ignored",
                    document.index,
                    name_line,
                    "metadata.name",
                    ref.key,
                )
            )
            return []
        self.seen_refs[ref.key] = f"{location.key} line {name_line}"
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
                name_line=name_line,
                known_kind=checked.known_kind,
                relations=compute_relations(ref, spec),
                content_hash=digest,
            )
        )
        if ref.kind != "Location":
            return []
        return _location_targets(spec, location, document, result)

    def _resolve_placeholders(
        self,
        data: dict[str, Any],
        document: YamlDocument,
        location: SourceLocation,
        root_key: str,
    ) -> dict[str, Any]:
        boundary = self.boundaries.get(root_key) if location.scheme == "file" else None
        resolved, problems = resolve_placeholders(data, location, boundary, self.placeholders)
        identity = _identity(data) if problems else None
        for problem in problems:
            self.result.problems.append(
                ProblemReport(
                    location.key,
                    problem.message,
                    document.index,
                    document.line_of([*problem.path, problem.key]),
                    FieldError(problem.path, problem.message).dotted,
                    identity,
                )
            )
        return resolved


class _Queued(NamedTuple):
    """A location waiting to be read, with its root and Location-chain depth.

    ``walked``: found by walking a folder; ``named_by``: the file whose Location named it.
    """

    location: SourceLocation
    root_key: str
    depth: int
    walked: bool
    named_by: str | None


def _looks_like_entity(data: Any) -> bool:
    return isinstance(data, dict) and ("apiVersion" in data or "kind" in data)


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
