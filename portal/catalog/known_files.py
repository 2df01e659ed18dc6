"""Re-imports skip the files that did not change since they were last read cleanly.

Parsing and validating YAML is nearly all of an import's time, and most files of a large
catalog are the same from one refresh to the next. A file is taken as read before when its
text (with how it was reached and the parser limits) hashes as it did then, that read
reported no problem, every entity it yielded is still stored under it, and it cannot
hold a placeholder (whose target file may have changed).
Its entities then count as unchanged and the Locations among them are followed as stored.
Anything else, and any doubt, means the file is parsed as usual.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel

from portal.catalog.locations import LocationError, SourceLocation
from portal.catalog.models import Entity, Source

# Part of every file digest: bump it when reading the same text can yield something else
# (new validation rules, new relations), so the next import parses every file again.
READER_VERSION = "1"
_ENTITY = SQLModel.metadata.tables[Entity.__tablename__].c
_SOURCE = SQLModel.metadata.tables[Source.__tablename__].c


@dataclass(frozen=True)
class KeptEntity:
    """An entity of a skipped file, as the rest of the import needs it."""

    ref: str
    kind: str
    name_line: int


@dataclass
class KnownFile:
    """A file's digest at its last clean read, its entities and its Location targets."""

    digest: str
    entity_count: int
    entities: list[tuple[int, KeptEntity]] = field(default_factory=list)  # (doc index, entity)
    targets: list[tuple[int, list[str]]] = field(default_factory=list)  # (doc index, targets)


def file_digest(text: str, walked: bool, max_file_bytes: int, max_aliases: int) -> str:
    """Return the digest that tells whether a file reads as it did last time."""
    header = f"{READER_VERSION}\0{int(walked)}\0{max_file_bytes}\0{max_aliases}\0"
    return hashlib.sha256((header + text).encode("utf-8", "surrogatepass")).hexdigest()


def load_known_files(session: Session) -> dict[str, KnownFile]:
    """Return every source that a later import may skip, keyed by source key.

    Three narrow queries, whatever the catalog's size: the sources, their entities'
    bookkeeping columns and the documents of Location entities only.
    """
    known = {
        key: KnownFile(digest, entity_count)
        for key, digest, entity_count in session.execute(
            sa_select(_SOURCE.key, _SOURCE.text_hash, _SOURCE.entity_count).where(
                _SOURCE.text_hash.is_not(None), _SOURCE.problem_count == 0
            )
        )
    }
    if not known:
        return known
    spoiled: set[str] = set()
    rows = session.execute(
        sa_select(
            _ENTITY.source_key,
            _ENTITY.source_doc,
            _ENTITY.ref,
            _ENTITY.kind,
            _ENTITY.name_line,
            _ENTITY.orphan,
        )
    )
    for source_key, doc_index, ref, kind, name_line, orphan in rows:
        entry = known.get(source_key)
        if entry is None or orphan:
            continue  # an orphan is what the file no longer yielded at its last read
        if name_line is None:
            spoiled.add(source_key)
            continue
        entry.entities.append((doc_index, KeptEntity(ref, kind, name_line)))
    locations = session.execute(
        sa_select(_ENTITY.source_key, _ENTITY.source_doc, _ENTITY.document).where(
            _ENTITY.kind_key == "location"
        )
    )
    for source_key, doc_index, document in locations:
        if source_key in known:
            known[source_key].targets.append((doc_index, location_targets(document)))
    for key, entry in known.items():
        if len(entry.entities) != entry.entity_count:
            spoiled.add(key)  # something else moved in or out: read it again
        entry.entities.sort(key=lambda item: item[0])
        entry.targets.sort(key=lambda item: item[0])
    return {key: entry for key, entry in known.items() if key not in spoiled}


def location_targets(document: Any) -> list[str]:
    """Return the targets a stored Location document names, in the order it names them."""
    spec = document.get("spec") if isinstance(document, dict) else None
    if not isinstance(spec, dict):
        return []
    targets = [spec["target"]] if isinstance(spec.get("target"), str) else []
    listed = spec.get("targets")
    if isinstance(listed, list):
        targets += [target for target in listed if isinstance(target, str)]
    return targets


def reuse(
    known: KnownFile, location: SourceLocation, seen_refs: dict[str, str]
) -> list[SourceLocation] | None:
    """Return the Location targets of an unchanged file, or None when it must be parsed.

    Its entities are claimed in ``seen_refs`` only on success; one that an earlier file of
    this run already defines means the file is parsed, so that the duplicate is reported
    exactly as a full read reports it.
    """
    if any(entity.ref in seen_refs for _index, entity in known.entities):
        return None
    try:
        targets = [location.resolve(target) for _index, names in known.targets for target in names]
    except LocationError:
        return None  # a clean read resolved them all; a change of rules did not
    for _index, entity in known.entities:
        seen_refs[entity.ref] = f"{location.key} line {entity.name_line}"
    return targets
