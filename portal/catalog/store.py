"""Writing an import into the database in one transaction, and reading entities back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, delete, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from portal.catalog.bulk import (
    analyze_catalog,
    bulk_insert,
    indexes_set_aside,
)
from portal.catalog.facets import rebuild_facets
from portal.catalog.models import (
    Entity,
    ImportReport,
    Problem,
    ProblemReport,
    Relation,
    Source,
    Tag,
)
from portal.catalog.refs import parse_ref, split_key
from portal.catalog.sort_keys import prefill_owner_sort, refresh_owner_sort
from portal.catalog.sources import ParsedEntity, ReadResult, cyclic_gc_paused
from portal.catalog.tags import insert_tags, sync_tag_columns, tag_rows
from portal.clock import utcnow

_CHUNK = 500
_WHOLE_TABLE_ABOVE = 2000  # keys; see _existing
_ANALYZE_FROM = 1000  # written entities; see _refresh_statistics
_SET_INDEXES_ASIDE_FROM = 5000  # new entities in an empty catalog; see indexes_set_aside
_ENTITY_TABLE: Table = SQLModel.metadata.tables[Entity.__tablename__]
_RELATION_TABLE: Table = SQLModel.metadata.tables[Relation.__tablename__]
_TAG_TABLE: Table = SQLModel.metadata.tables[Tag.__tablename__]
# catalog_search: PostgreSQL's search rows, written by triggers (migration 0014).
_BULK_TABLES = (_ENTITY_TABLE.name, _RELATION_TABLE.name, _TAG_TABLE.name, "catalog_search")


class _Stored(NamedTuple):
    """What an import needs to know about an entity already in the database."""

    id: int
    content_hash: str
    orphan: bool
    source_key: str


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ref_or_none(value: Any, default_kind: str, namespace: str) -> str | None:
    if not isinstance(value, str):
        return None
    return parse_ref(value, default_kind=default_kind, default_namespace=namespace).key


def _tags_text(document: dict[str, Any]) -> str:
    metadata: dict[str, Any] = document.get("metadata") or {}
    return " ".join(str(tag) for tag in metadata.get("tags") or [])


def _row(parsed: ParsedEntity) -> dict[str, Any]:
    document = parsed.document
    metadata: dict[str, Any] = document.get("metadata") or {}
    spec: dict[str, Any] = document.get("spec") or {}
    namespace = parsed.ref.namespace
    return {
        "ref": parsed.ref.key,
        "kind": parsed.ref.kind,
        "kind_key": parsed.ref.kind.lower(),
        "namespace": namespace,
        "name": parsed.ref.name,
        "title": metadata.get("title"),
        "description": metadata.get("description"),
        "spec_type": spec.get("type") if isinstance(spec.get("type"), str) else None,
        "lifecycle": spec.get("lifecycle") if isinstance(spec.get("lifecycle"), str) else None,
        "owner_ref": _ref_or_none(spec.get("owner"), "group", namespace),
        "system_ref": _ref_or_none(spec.get("system"), "system", namespace),
        "tags_text": _tags_text(document),
        "document": document,
        "source_key": parsed.source_key,
        "source_doc": parsed.doc_index,
        "source_line": parsed.line,
        "name_line": parsed.name_line,
        "known_kind": parsed.known_kind,
        "orphan": False,
        "content_hash": parsed.content_hash,
        "updated_at": utcnow(),
    }


def apply_import(session: Session, read: ReadResult) -> ImportReport:
    """Store what :func:`portal.catalog.sources.read_sources` read, atomically.

    New and changed entities are written with their relations; entities that their source
    (or a root's Location chain) no longer yields are marked orphaned, never deleted; a
    document that failed validation leaves its previously stored version untouched.
    """
    with cyclic_gc_paused():
        return _apply_import(session, read)


def _apply_import(session: Session, read: ReadResult) -> ImportReport:
    report = ImportReport(roots=list(read.root_keys), sources_read=len(read.sources))
    report.problems = list(read.problems)
    incoming = {parsed.ref.key: parsed for parsed in read.entities}
    existing = _existing(session, list(incoming), read)
    conflicts = _conflicts(existing, incoming, read, report)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changed: list[ParsedEntity] = []
    for key, parsed in incoming.items():
        if key in conflicts:
            continue
        report.by_kind[parsed.ref.kind] = report.by_kind.get(parsed.ref.kind, 0) + 1
        current = existing.get(key)
        if current is None:
            inserts.append(_row(parsed))
            changed.append(parsed)
        elif current.content_hash != parsed.content_hash or current.orphan:
            updates.append({"id": current.id, **_row(parsed)})
            changed.append(parsed)
        else:
            report.unchanged += 1
    kept = {entity.ref for entities in read.kept.values() for entity in entities}
    for entities in read.kept.values():  # files not parsed again: unchanged by definition
        for entity in entities:
            report.by_kind[entity.kind] = report.by_kind.get(entity.kind, 0) + 1
        report.unchanged += len(entities)
    report.added, report.updated = len(inserts), len(updates)
    with ExitStack() as stack:
        if len(inserts) >= _SET_INDEXES_ASIDE_FROM and not _any_entity(session):
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                prefill_owner_sort(connection, inserts)  # see tables_set_aside
            stack.enter_context(indexes_set_aside(connection, _BULK_TABLES))
        _write(session, inserts, updates, changed, existing)
    report.orphaned = _mark_orphans(session, read, (set(incoming) - conflicts) | kept)
    if inserts or updates or report.orphaned:
        sync_tag_columns(session.connection())  # owners' names, orphans: see tags
    _record_sources(session, read, incoming, report.problems)
    session.commit()
    if report.added + report.updated >= _ANALYZE_FROM:
        _refresh_statistics(session)
    return report


def _any_entity(session: Session) -> bool:
    return session.execute(sa_select(_ENTITY_TABLE.c.id).limit(1)).first() is not None


def _write(
    session: Session,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    changed: list[ParsedEntity],
    existing: dict[str, _Stored],
) -> None:
    """Write new and changed entities, their relations and tags."""
    bulk_insert(session, _ENTITY_TABLE, inserts)
    if updates:
        # One executemany; the SET clause comes from the keys of the rows.
        by_id = update(_ENTITY_TABLE).where(_ENTITY_TABLE.c.id == bindparam("entity_id"))
        for chunk in _chunks([{"entity_id": row.pop("id"), **row} for row in updates]):
            session.execute(by_id, list(chunk))
    if inserts or updates:
        # Both read other rows (an owner's title), so they follow every written change.
        refresh_owner_sort(session.connection())
        rebuild_facets(session.connection())
    # Entities are never deleted, so only those already stored can have rows to drop.
    origins = [parsed.ref.key for parsed in changed if parsed.ref.key in existing]
    relations = [
        {"origin_ref": r.origin, "source_ref": r.source, "type": r.type, "target_ref": r.target}
        for parsed in changed
        for r in parsed.relations
    ]
    tags = [
        row for parsed in changed for row in tag_rows(parsed.ref.key, _tags_text(parsed.document))
    ]
    _replace_rows(session, _RELATION_TABLE, _RELATION_TABLE.c.origin_ref, origins, relations)
    _drop_rows(session, _TAG_TABLE.c.entity_ref, origins)
    insert_tags(session.connection(), tags)  # after the entities: it copies their columns


def _refresh_statistics(session: Session) -> None:
    """Give the planner statistics on the new rows now (see :func:`analyze_catalog`)."""
    analyze_catalog(session.connection())
    session.commit()


def _existing(session: Session, keys: list[str], read: ReadResult) -> dict[str, _Stored]:
    """Return the stored bookkeeping columns (not whole entities: the JSON is the slow part).

    A large import reads them for every entity in one plain query: many 500-key ``IN``
    lists cost more, and PostgreSQL may run them with a plan cached while the table was empty.
    """
    found: dict[str, _Stored] = {}
    table = _ENTITY_TABLE.c
    query = sa_select(table.id, table.ref, table.content_hash, table.orphan, table.source_key)
    wanted = set(keys)
    queries = (
        [query]
        if len(keys) > _WHOLE_TABLE_ABOVE
        else [query.where(table.ref.in_(chunk)) for chunk in _chunks(keys)]
    )
    for statement in queries:
        for entity_id, ref, content_hash, orphan, source_key in session.execute(statement):
            if ref in wanted:
                found[ref] = _Stored(entity_id, content_hash, orphan, source_key)
    return found


def _conflicts(
    existing: dict[str, _Stored],
    incoming: dict[str, ParsedEntity],
    read: ReadResult,
    report: ImportReport,
) -> set[str]:
    """Refs another, still-live source already defines: the first definition wins."""
    conflicts: set[str] = set()
    for key, parsed in incoming.items():
        current = existing.get(key)
        if current is None or current.orphan or current.source_key == parsed.source_key:
            continue
        if current.source_key in read.sources and current.source_key not in read.unreadable:
            continue  # moved between files that this run read: the new place wins
        conflicts.add(key)
        report.problems.append(
            ProblemReport(
                parsed.source_key,
                f"{parsed.ref} is already defined in {current.source_key}; this copy is ignored",
                parsed.doc_index,
                parsed.name_line,
                "metadata.name",
                key,
            )
        )
    return conflicts


def _replace_rows(
    session: Session, table: Table, owner: Any, owners: list[str], rows: list[dict[str, Any]]
) -> None:
    """Drop the rows of ``table`` whose ``owner`` column is one of ``owners``; insert ``rows``."""
    _drop_rows(session, owner, owners)
    bulk_insert(session, table, rows)


def _drop_rows(session: Session, owner: Any, owners: list[str]) -> None:
    """Drop the rows whose ``owner`` column (of their table) is one of ``owners``."""
    for chunk in _chunks(owners):
        session.execute(delete(owner.table).where(owner.in_(chunk)))


def _mark_orphans(session: Session, read: ReadResult, live: set[str]) -> int:
    """Orphan entities of the sources this run re-read (or no longer reached) that vanished."""
    known_sources = session.exec(
        select(Source.key).where(col(Source.root_key).in_(read.root_keys or [""]))
    ).all()
    scope = (set(read.sources) | set(known_sources)) - read.unreadable
    keep = live | read.rejected_refs
    orphaned = 0
    for chunk in _chunks(sorted(scope)):
        candidates = session.exec(
            select(Entity.id, Entity.ref).where(
                col(Entity.source_key).in_(chunk), col(Entity.orphan).is_(False)
            )
        ).all()
        ids = [entity_id for entity_id, ref in candidates if ref not in keep]
        for id_chunk in _chunks(ids):
            session.execute(
                update(Entity)
                .where(col(Entity.id).in_(id_chunk))
                .values(orphan=True, updated_at=utcnow())
            )
        orphaned += len(ids)
    return orphaned


def _record_sources(
    session: Session,
    read: ReadResult,
    incoming: dict[str, ParsedEntity],
    problems: list[ProblemReport],
) -> None:
    counts = Counter(parsed.source_key for parsed in incoming.values())
    counts.update({key: len(entities) for key, entities in read.kept.items()})
    problem_counts = Counter(problem.source for problem in problems)
    stale = session.exec(
        select(Source).where(
            col(Source.root_key).in_(read.root_keys or [""]),
            col(Source.key).not_in(list(read.sources) or [""]),
        )
    ).all()
    for source in stale:
        session.delete(source)
    touched = list(read.sources) + [s.key for s in stale] + [p.source for p in problems]
    for chunk in _chunks(sorted(set(touched))):
        session.execute(delete(Problem).where(col(Problem.source_key).in_(chunk)))
    current = {
        source.key: source
        for chunk in _chunks(list(read.sources))
        for source in session.exec(select(Source).where(col(Source.key).in_(chunk)))
    }
    for key, root_key in read.sources.items():
        source = current.get(key) or Source(key=key, root_key=root_key)
        source.root_key = root_key
        source.is_root = source.is_root or key == root_key
        source.entity_count = counts.get(key, 0)
        source.problem_count = problem_counts.get(key, 0)
        source.text_hash = read.digests.get(key)
        source.last_read_at = utcnow()
        session.add(source)
    for root_key in read.root_keys:
        if root_key not in read.sources:  # a directory root: remember it for refreshes
            root = session.exec(select(Source).where(Source.key == root_key)).first()
            root = root or Source(key=root_key, root_key=root_key)
            root.is_root = True
            root.last_read_at = utcnow()
            session.add(root)
    session.add_all(
        Problem(
            source_key=p.source,
            doc_index=p.doc_index,
            line=p.line,
            field_path=p.field_path,
            entity_ref=p.entity_ref,
            message=p.message,
        )
        for p in problems
    )


def root_keys(session: Session) -> list[str]:
    """Return every registered root, for a full refresh."""
    return list(session.exec(select(Source.key).where(col(Source.is_root).is_(True))).all())


def get_entity(session: Session, kind: str, namespace: str, name: str) -> Entity | None:
    """Return one entity; kind, namespace and name compare case-insensitively."""
    key = f"{kind}:{namespace}/{name}".lower()
    return session.exec(select(Entity).where(Entity.ref == key)).first()


def entities_by_ref(session: Session, keys: Iterable[str]) -> dict[str, Entity]:
    """Return the stored entities among ``keys``, keyed by ref."""
    found: dict[str, Entity] = {}
    for chunk in _chunks(sorted(set(keys))):
        for entity in session.exec(select(Entity).where(col(Entity.ref).in_(chunk))):
            found[entity.ref] = entity
    return found


@dataclass(frozen=True)
class RelationView:
    """A relation from one entity's point of view, with the target resolved when it exists."""

    type: str
    target_ref: str
    target: Entity | None

    @property
    def target_parts(self) -> tuple[str, str, str]:
        """Return ``(kind, namespace, name)`` of the target, stored or not."""
        return split_key(self.target_ref)


def relations_of(session: Session, ref: str) -> list[RelationView]:
    """Return the distinct relations whose source is ``ref``, sorted by type and target."""
    pairs = session.exec(
        select(Relation.type, Relation.target_ref).where(Relation.source_ref == ref).distinct()
    ).all()
    targets = entities_by_ref(session, (target for _type, target in pairs))
    return sorted(
        (RelationView(type_, target, targets.get(target)) for type_, target in pairs),
        key=lambda view: (view.type, view.target_ref),
    )


def problems(session: Session, source_key: str | None = None, limit: int = 200) -> list[Problem]:
    """Return the current import problems, newest first."""
    query = select(Problem).order_by(col(Problem.id).desc()).limit(limit)
    if source_key:
        query = query.where(Problem.source_key == source_key)
    return list(session.exec(query).all())


def problems_for(session: Session, entity: Entity) -> list[Problem]:
    """Return the problems that concern one entity (for example a rejected newer version)."""
    return list(session.exec(select(Problem).where(Problem.entity_ref == entity.ref)).all())
