"""Catalog listing: filters, ranked full-text search (SQLite FTS5 / PostgreSQL tsvector), paging."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, column, func, literal_column, table, text
from sqlmodel import Session, col, select

from portal.catalog.models import Entity
from portal.catalog.refs import RefError, parse_ref

# Sort keys: (column, descending) pairs; ``desc=1`` reverses every one of them.
SORTS: dict[str, tuple[tuple[ColumnElement[Any], bool], ...]] = {
    "name": ((col(Entity.name), False),),
    "kind": ((col(Entity.kind_key), False), (col(Entity.name), False)),
    "owner": ((col(Entity.owner_ref), False), (col(Entity.name), False)),
    "type": ((col(Entity.spec_type), False), (col(Entity.name), False)),
    "lifecycle": ((col(Entity.lifecycle), False), (col(Entity.name), False)),
    "updated": ((col(Entity.updated_at), True), (col(Entity.name), False)),
}
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000  # deeper pages are refused: offsets past int64 crash the database
_WORD = re.compile(r"\w+", re.UNICODE)
_FTS = table("catalog_entity_fts", column("rowid"))


@dataclass
class EntityQuery:
    """What the list page and the JSON API can ask for."""

    q: str = ""
    kind: str = ""
    type: str = ""
    owner: str = ""
    lifecycle: str = ""
    system: str = ""
    tag: str = ""
    sort: str = ""
    desc: bool = False
    limit: int = 25
    offset: int = 0
    include_orphans: bool = True

    def params(self, **override: Any) -> dict[str, str]:
        """Return the non-empty query-string parameters, with ``override`` applied."""
        values: dict[str, Any] = {
            "q": self.q,
            "kind": self.kind,
            "type": self.type,
            "owner": self.owner,
            "lifecycle": self.lifecycle,
            "system": self.system,
            "tag": self.tag,
            "sort": self.sort,
            "desc": "1" if self.desc else "",
            "offset": self.offset or "",
        }
        values.update(override)
        return {key: str(value) for key, value in values.items() if value not in ("", None, 0)}


@dataclass
class EntityPage:
    """One page of results and the total number of matches."""

    items: list[Entity]
    total: int
    query: EntityQuery
    facets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def has_next(self) -> bool:
        """Return True when another page follows."""
        return self.query.offset + len(self.items) < self.total


def _tokens(q: str) -> list[str]:
    return [token.lower() for token in _WORD.findall(q)][:12]


def _ref_filter(value: str, default_kind: str) -> str:
    try:
        return parse_ref(value, default_kind=default_kind).key
    except RefError:
        return value.lower()


def _filters(query: EntityQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.kind:
        conditions.append(col(Entity.kind_key) == query.kind.lower())
    if query.type:
        conditions.append(col(Entity.spec_type) == query.type)
    if query.lifecycle:
        conditions.append(col(Entity.lifecycle) == query.lifecycle)
    if query.owner:
        conditions.append(col(Entity.owner_ref) == _ref_filter(query.owner, "group"))
    if query.system:
        conditions.append(col(Entity.system_ref) == _ref_filter(query.system, "system"))
    if query.tag:
        padded = literal_column("' '") + col(Entity.tags_text) + literal_column("' '")
        conditions.append(padded.like(f"% {query.tag} %"))
    if not query.include_orphans:
        conditions.append(col(Entity.orphan).is_(False))
    return conditions


def _with_search(
    session: Session, statement: Select[Any], tokens: list[str]
) -> tuple[Select[Any], ColumnElement[Any] | None]:
    """Add the dialect's full-text match and return the rank expression (lower is better)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        tsquery = " & ".join(f"{token}:*" for token in tokens)
        statement = statement.where(
            text("catalog_entity.search_vector @@ to_tsquery('simple', :tsq)")
        ).params(tsq=tsquery)
        rank = literal_column(
            "-ts_rank(catalog_entity.search_vector, to_tsquery('simple', :tsq))"
        )
        return statement, rank
    match = " ".join(f'"{token}"*' for token in tokens)
    statement = statement.join(_FTS, _FTS.c.rowid == col(Entity.id)).where(text("catalog_entity_fts MATCH :match")).params(match=match)
    # Column weights: name and title count most, then tags, owner, description.
    rank = literal_column("bm25(catalog_entity_fts, 10.0, 8.0, 4.0, 2.0, 1.0)")
    return statement, rank


def list_entities(session: Session, query: EntityQuery) -> EntityPage:
    """Return one page of entities matching ``query``, ranked by relevance when searching."""
    limit = max(1, min(query.limit, MAX_LIMIT))
    offset = max(0, query.offset)
    conditions = _filters(query)
    tokens = _tokens(query.q)
    statement: Select[Any] = select(Entity).where(*conditions)
    counter: Select[Any] = select(func.count(col(Entity.id))).where(*conditions)
    rank: ColumnElement[Any] | None = None
    if tokens:
        statement, rank = _with_search(session, statement, tokens)
        counter, _ = _with_search(session, counter, tokens)
    if query.sort in SORTS:
        order = [
            column.desc() if descending != query.desc else column.asc()
            for column, descending in SORTS[query.sort]
        ]
    elif rank is not None:
        order = [rank, col(Entity.name)]
    else:
        order = [col(Entity.kind_key), col(Entity.name)]
    items = list(session.exec(statement.order_by(*order).limit(limit).offset(offset)).all())
    total = int(session.exec(counter).one())
    return EntityPage(items=items, total=total, query=query)


def facets(session: Session) -> dict[str, list[str]]:
    """Return the distinct values offered by the list filters."""
    values: dict[str, list[str]] = {}
    for name, column in (
        ("kind", Entity.kind),
        ("type", Entity.spec_type),
        ("lifecycle", Entity.lifecycle),
        ("owner", Entity.owner_ref),
        ("system", Entity.system_ref),
    ):
        rows = session.exec(select(column).where(col(column).is_not(None)).distinct()).all()
        values[name] = sorted({str(row) for row in rows})
    tags: set[str] = set()
    for tags_text in session.exec(select(Entity.tags_text).where(Entity.tags_text != "")):
        tags.update(tags_text.split())
    values["tag"] = sorted(tags)
    return values
