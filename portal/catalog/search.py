"""Catalog listing: filters, ranked full-text search (SQLite FTS5 / PostgreSQL tsvector), paging."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CTE, ColumnElement, column, false, func, literal_column, table, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from portal.catalog.models import Entity
from portal.catalog.refs import RefError, parse_ref

_COLUMNS = SQLModel.metadata.tables[Entity.__tablename__].c
_OWNER = SQLModel.metadata.tables[Entity.__tablename__].alias("owner_entity").c


def _shown(title: ColumnElement[Any], name: ColumnElement[Any]) -> ColumnElement[Any]:
    """Return what the pages show for an entity (``display_name``), lower-cased to sort by."""
    return func.lower(func.coalesce(func.nullif(title, ""), name))


@dataclass(frozen=True)
class SortKey:
    """One ``ORDER BY`` term: an expression, its direction and whether it can be empty."""

    expression: ColumnElement[Any]
    descending: bool = False
    nullable: bool = False

    def flipped(self, flip: bool) -> SortKey:
        """Return the key reversed when ``flip`` is set (``desc=1``)."""
        return SortKey(self.expression, self.descending != flip, self.nullable)


# Every column sorts by what the list shows in it: names and owners by title, else name.
_NAME = SortKey(_shown(_COLUMNS.title, _COLUMNS.name))
_OWNER_SHOWN = func.coalesce(
    sa_select(_shown(_OWNER.title, _OWNER.name))
    .where(_OWNER.ref == _COLUMNS.owner_ref)
    .scalar_subquery(),
    _COLUMNS.owner_ref,  # an owner not in the catalog is shown as its ref
)
SORTS: dict[str, tuple[SortKey, ...]] = {
    "name": (_NAME,),
    "kind": (SortKey(_COLUMNS.kind_key), _NAME),
    "owner": (SortKey(_OWNER_SHOWN, nullable=True), _NAME),
    "type": (SortKey(_COLUMNS.spec_type, nullable=True), _NAME),
    "lifecycle": (SortKey(_COLUMNS.lifecycle, nullable=True), _NAME),
    "updated": (SortKey(_COLUMNS.updated_at, descending=True), _NAME),
}
ALL_KINDS = "all"  # ``kind=all``: every kind (the list page shows Components by default)
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000  # deeper pages are refused: offsets past int64 crash the database
_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # letters and digits: how both indexes split
_FTS = table("catalog_entity_fts", column("rowid"))
# Column weights: name and title count most, then tags, owner, description.
_BM25 = "bm25(catalog_entity_fts, 10.0, 8.0, 4.0, 2.0, 1.0)"
_PG_VECTOR: ColumnElement[Any] = literal_column("catalog_entity.search_vector")
# The CTE hint exists since SQLite 3.35; older versions stay correct, only slower.
_MATERIALIZED = sqlite3.sqlite_version_info >= (3, 35, 0)


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
    mine: bool = False
    # Owner refs of "owned by my teams" (the signed-in person's groups); None: no such filter.
    owners: frozenset[str] | None = None

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
            "mine": "1" if self.mine else "",
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


def filter_ref(value: str, default_kind: str) -> str:
    """Return the key a filter value (``team-a`` or ``group:default/team-a``) compares with."""
    try:
        return parse_ref(value, default_kind=default_kind).key
    except RefError:
        return value.lower()


def _filters(query: EntityQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    values = (query.kind, query.type, query.lifecycle, query.owner, query.system, query.tag)
    if any("\x00" in value for value in values):
        # No stored value holds a NUL (PostgreSQL refuses the parameter outright).
        return [false()]
    if query.kind and query.kind.lower() != ALL_KINDS:
        conditions.append(col(Entity.kind_key) == query.kind.lower())
    if query.type:
        conditions.append(col(Entity.spec_type) == query.type)
    if query.lifecycle:
        conditions.append(col(Entity.lifecycle) == query.lifecycle)
    if query.owner:
        conditions.append(col(Entity.owner_ref) == filter_ref(query.owner, "group"))
    if query.owners is not None:
        owners = sorted(query.owners)
        conditions.append(col(Entity.owner_ref).in_(owners) if owners else false())
    if query.system:
        conditions.append(col(Entity.system_ref) == filter_ref(query.system, "system"))
    if query.tag:
        padded: ColumnElement[str] = (
            literal_column("' '") + col(Entity.tags_text) + literal_column("' '")
        )
        conditions.append(padded.contains(f" {query.tag} ", autoescape=True))
    if not query.include_orphans:
        conditions.append(col(Entity.orphan).is_(False))
    return conditions


def _sqlite_hits(tokens: list[str], *, ranked: bool) -> CTE:
    """Return the FTS5 matches (and their bm25 rank), computed before any filter is applied.

    ``MATERIALIZED`` keeps SQLite from driving the query from a filter's index (say all
    4,000 components) and re-running the full-text match for each of those rows.
    """
    match = " ".join(f'"{token}"*' for token in tokens)
    columns: list[ColumnElement[Any]] = [_FTS.c.rowid.label("id")]
    if ranked:
        columns.append(literal_column(_BM25).label("rank"))
    hits = (
        sa_select(*columns)
        .where(text("catalog_entity_fts MATCH :match").bindparams(match=match))
        .cte("hits")
    )
    return hits.prefix_with("MATERIALIZED") if _MATERIALIZED else hits


def _postgres_match(tokens: list[str]) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """Return the tsvector condition and its rank (higher is better)."""
    tsquery = func.to_tsquery(
        literal_column("'simple'::regconfig"), " & ".join(f"{token}:*" for token in tokens)
    )
    return _PG_VECTOR.bool_op("@@")(tsquery), func.ts_rank(_PG_VECTOR, tsquery)


def _sorted(key: ColumnElement[Any], descending: bool, nullable: bool) -> ColumnElement[Any]:
    ordered = key.desc() if descending else key.asc()
    if not nullable:
        return ordered
    # PostgreSQL's default (empty values last going up, first going down) on every database.
    return ordered.nulls_first() if descending else ordered.nulls_last()


def _postgres_search_page(
    session: Session,
    conditions: list[ColumnElement[bool]],
    order: list[SortKey],
    limit: int,
    offset: int,
) -> tuple[list[Entity], int | None]:
    """Return one page of matches and their total, from a single scan of the table.

    The matches are ranked and counted on narrow rows (id and sort keys), and only the
    page's entities are then read whole: the same as a page query plus a count query,
    at about half the cost. The total is None when only a too-far offset left the page empty.
    """
    keys = [key.expression.label(f"key{index}") for index, key in enumerate(order)]
    page = (
        sa_select(_COLUMNS.id, func.count().over().label("total"), *keys)
        .where(*conditions)
        .order_by(
            *(
                _sorted(label, key.descending, key.nullable)
                for label, key in zip(keys, order, strict=True)
            )
        )
        .limit(limit)
        .offset(offset)
        .subquery("page")
    )
    statement = (
        select(Entity, page.c.total)
        .join(page, page.c.id == col(Entity.id))
        .order_by(
            *(
                _sorted(page.c[label.name], key.descending, key.nullable)
                for label, key in zip(keys, order, strict=True)
            )
        )
    )
    rows = session.exec(statement).all()
    if not rows:
        return [], 0 if offset == 0 else None
    return [entity for entity, _total in rows], rows[0][1]


def list_entities(session: Session, query: EntityQuery) -> EntityPage:
    """Return one page of entities matching ``query``, ranked by relevance when searching."""
    limit = max(1, min(query.limit, MAX_LIMIT))
    offset = min(max(0, query.offset), MAX_OFFSET)
    conditions = _filters(query)
    tokens = _tokens(query.q)
    on_postgres = bool(tokens) and session.get_bind().dialect.name == "postgresql"
    statement = select(Entity)
    counter = select(func.count()).select_from(Entity)
    rank: SortKey | None = None
    if on_postgres:
        match, score = _postgres_match(tokens)
        conditions.append(match)
        rank = SortKey(score, descending=True)
    elif tokens:
        hits = _sqlite_hits(tokens, ranked=True)
        statement = statement.join(hits, hits.c.id == col(Entity.id))
        rank = SortKey(hits.c.rank)  # bm25: lower is better
        counted = _sqlite_hits(tokens, ranked=False)
        counter = counter.join(counted, counted.c.id == col(Entity.id))
    order: list[SortKey]
    if query.sort in SORTS:
        order = [key.flipped(query.desc) for key in SORTS[query.sort]]
    elif rank is not None:
        order = [rank, _NAME]
    elif query.kind and query.kind.lower() != ALL_KINDS:
        order = [_NAME]  # one kind: ordering by it too makes SQLite sort the slow way
    else:
        order = [SortKey(_COLUMNS.kind_key), _NAME]
    # Names repeat across kinds and namespaces: the unique ref keeps pages from overlapping.
    order.append(SortKey(_COLUMNS.ref, order[-1].descending))
    total: int | None = None
    if on_postgres:
        items, total = _postgres_search_page(session, conditions, order, limit, offset)
    else:
        statement = statement.where(*conditions).order_by(
            *(_sorted(key.expression, key.descending, key.nullable) for key in order)
        )
        items = list(session.exec(statement.limit(limit).offset(offset)).all())
    if total is None:
        total = session.exec(counter.where(*conditions)).one()
    return EntityPage(items=items, total=total, query=query)


def facets(session: Session) -> dict[str, list[str]]:
    """Return the distinct values offered by the list filters."""
    values: dict[str, list[str]] = {}
    for name, facet in (
        ("kind", Entity.kind),
        ("type", Entity.spec_type),
        ("lifecycle", Entity.lifecycle),
        ("owner", Entity.owner_ref),
        ("system", Entity.system_ref),
    ):
        rows = session.exec(select(facet).where(col(facet).is_not(None)).distinct()).all()
        values[name] = sorted({str(row) for row in rows})
    tags: set[str] = set()
    for tags_text in session.exec(select(Entity.tags_text).where(Entity.tags_text != "")):
        tags.update(tags_text.split())
    values["tag"] = sorted(tags)
    return values
