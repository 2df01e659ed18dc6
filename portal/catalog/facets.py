"""The list filters' values, kept in ``catalog_facet`` by the import that changes them.

Computing them per request meant reading every entity's tags and five ``DISTINCT`` scans:
half a second at 100,000 entities. Entities change only through an import, so the import
recomputes the table in its own transaction (GROUP BY on the columns, the tags split in
Python as the pages split them) and the list page reads a few thousand small rows.
Each owner row also holds the owner entity's kind, title and name (when the catalog
has it), which the owner filter's labels are made from.

Every rebuild also writes a new random generation (a row of the pseudo-facet ``""``), so
a process may keep what it derived from the table (:func:`remembered`) until the next
import that changes it, in this process or another, and read only that one row meanwhile.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, delete, func, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel

from portal.catalog.models import Entity, Facet

_ENTITY = SQLModel.metadata.tables[Entity.__tablename__]
_FACET = SQLModel.metadata.tables[Facet.__tablename__]
# Filter name -> the column its values come from (every entity, orphans included).
FACET_COLUMNS = {
    "kind": _ENTITY.c.kind,
    "type": _ENTITY.c.spec_type,
    "lifecycle": _ENTITY.c.lifecycle,
    "owner": _ENTITY.c.owner_ref,
    "system": _ENTITY.c.system_ref,
}
FACET_NAMES = (*FACET_COLUMNS, "tag")
_GENERATION = ""  # the pseudo-facet whose one value names the table's current contents
_REMEMBERED: dict[tuple[str, str], object] = {}
_REMEMBERED_AT_MOST = 32  # entries: a few databases (tests) times a few derived values
_LOCK = threading.Lock()
T = TypeVar("T")


@dataclass(frozen=True)
class StoredOwner:
    """An owner filter value and, when the catalog holds that entity, how it is named."""

    ref: str
    kind: str | None
    title: str | None
    name: str | None

    @property
    def found(self) -> bool:
        """Return True when the owner is an entity of the catalog."""
        return self.name is not None


def rebuild_facets(connection: Connection) -> None:
    """Recompute every filter's values and their entity counts from the entity table."""
    rows: list[dict[str, object]] = []
    for facet, column in FACET_COLUMNS.items():
        if facet == "owner":
            continue
        grouped = sa_select(column, func.count()).where(column.is_not(None)).group_by(column)
        rows += [_facet_row(facet, value, count) for value, count in connection.execute(grouped)]
    owner_table = _ENTITY.alias("owner_entity")
    owner = owner_table.c
    owners = (
        sa_select(_ENTITY.c.owner_ref, func.count(), owner.kind, owner.title, owner.name)
        .outerjoin_from(_ENTITY, owner_table, owner.ref == _ENTITY.c.owner_ref)
        .where(_ENTITY.c.owner_ref.is_not(None))
        .group_by(_ENTITY.c.owner_ref, owner.kind, owner.title, owner.name)
    )
    for ref, count, kind, title, name in connection.execute(owners):
        rows.append(_facet_row("owner", ref, count, kind=kind, title=title, name=name))
    tags: Counter[str] = Counter()
    for (tags_text,) in connection.execute(
        sa_select(_ENTITY.c.tags_text).where(_ENTITY.c.tags_text != "")
    ):
        tags.update(set(tags_text.split()))  # an entity counts once per tag
    rows += [_facet_row("tag", tag, count) for tag, count in tags.items()]
    rows.append(_facet_row(_GENERATION, uuid.uuid4().hex, 0))
    connection.execute(delete(_FACET))
    if rows:
        connection.execute(insert(_FACET), rows)


def _facet_row(
    facet: str,
    value: object,
    count: int,
    *,
    kind: str | None = None,
    title: str | None = None,
    name: str | None = None,
) -> dict[str, object]:
    return {
        "facet": facet,
        "value": str(value),
        "entity_count": count,
        "owner_kind": kind,
        "owner_title": title,
        "owner_name": name,
    }


def facet_values(session: Session) -> dict[str, list[str]]:
    """Return the values each list filter offers, sorted."""
    values: dict[str, list[str]] = {name: [] for name in FACET_NAMES}
    statement = sa_select(_FACET.c.facet, _FACET.c.value).where(_FACET.c.facet != _GENERATION)
    for facet, value in session.execute(statement):
        values.setdefault(facet, []).append(value)
    return {facet: sorted(found) for facet, found in values.items()}


def facet_counts(session: Session) -> dict[str, dict[str, int]]:
    """Return how many entities (orphans included) carry each filter value."""
    counts: dict[str, dict[str, int]] = {name: {} for name in FACET_NAMES}
    statement = sa_select(_FACET.c.facet, _FACET.c.value, _FACET.c.entity_count).where(
        _FACET.c.facet != _GENERATION
    )
    for facet, value, count in session.execute(statement):
        counts.setdefault(facet, {})[value] = count
    return counts


def stored_owners(session: Session) -> list[StoredOwner]:
    """Return the owner filter's values with their owner entities' names, as stored."""
    statement = sa_select(
        _FACET.c.value, _FACET.c.owner_kind, _FACET.c.owner_title, _FACET.c.owner_name
    ).where(_FACET.c.facet == "owner")
    return [StoredOwner(*row) for row in session.execute(statement)]


def remembered(session: Session, what: str, compute: Callable[[], T]) -> T:
    """Return ``compute()`` as of the facet table's generation, computed once per generation.

    The caller must treat the value as read-only: other requests share it.
    """
    generation = session.execute(
        sa_select(_FACET.c.value).where(_FACET.c.facet == _GENERATION)
    ).scalar_one_or_none()
    if generation is None:  # never imported (or not since the upgrade): nothing to key on
        return compute()
    key = (generation, what)
    with _LOCK:
        if key in _REMEMBERED:
            return _REMEMBERED[key]  # type: ignore[return-value]  # stored by this function
    value = compute()
    with _LOCK:
        if len(_REMEMBERED) >= _REMEMBERED_AT_MOST:
            _REMEMBERED.clear()
        _REMEMBERED[key] = value
    return value


def counted_by_facet(session: Session, facet: str, value: str) -> int:
    """Return how many entities carry one filter value (orphans included), from the table."""
    if facet == "kind":  # the filter compares lower-cased kinds; the facet keeps their case
        kinds = remembered(session, "kind counts", lambda: facet_counts(session)["kind"])
        return sum(count for kind, count in kinds.items() if kind.lower() == value.lower())
    found = session.execute(
        sa_select(_FACET.c.entity_count).where(_FACET.c.facet == facet, _FACET.c.value == value)
    ).scalar_one_or_none()
    return int(found or 0)


def counted_in_all(session: Session) -> int:
    """Return how many entities the catalog holds (orphans included), from the table."""
    kinds = remembered(session, "kind counts", lambda: facet_counts(session)["kind"])
    return sum(kinds.values())
