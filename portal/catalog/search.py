"""Catalog listing: filters, full-text search best first (SQLite FTS5, PostgreSQL tsvector)."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CTE, ColumnElement, column, false, func, literal_column, table, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from portal.catalog.facets import counted_by_facet, counted_in_all, facet_values, remembered
from portal.catalog.models import Entity
from portal.catalog.refs import RefError, parse_ref
from portal.catalog.search_postgres import (
    SEARCH,
    SEARCH_COLUMNS,
    SEARCH_SORTS,
    PostgresTiers,
    postgres_match,
)
from portal.catalog.search_tiers import (
    TEXT_COLUMNS,
    SqliteTiers,
    TieredSearch,
    facet_word,
    fts_match,
    tiered_page,
)
from portal.catalog.sort_keys import ENTITY_SORTS, SortKey, Sorts, outer_order
from portal.catalog.tags import (
    TAG_COLUMNS,
    TAG_SORTS,
    exact_tag,
    tag_conditions,
    tag_key,
    tagged_page,
)

_COLUMNS = SQLModel.metadata.tables[Entity.__tablename__].c


ALL_KINDS = "all"  # ``kind=all``: every kind (the list page shows Components by default)
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000  # deeper pages are refused: offsets past int64 crash the database
_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # letters and digits: how both indexes split
_FTS = table("catalog_entity_fts", column("rowid"))
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


def _filters(
    session: Session, query: EntityQuery, columns: Any = _COLUMNS
) -> list[ColumnElement[bool]]:
    """Return the conditions of the filters, on entities or (``TAG_COLUMNS``) on tag rows."""
    conditions: list[ColumnElement[bool]] = []
    values = (query.kind, query.type, query.lifecycle, query.owner, query.system, query.tag)
    if any("\x00" in value for value in values):
        # No stored value holds a NUL (PostgreSQL refuses the parameter outright).
        return [false()]
    if query.kind and query.kind.lower() != ALL_KINDS:
        conditions.append(columns.kind_key == query.kind.lower())
    if query.type:
        conditions.append(columns.spec_type == query.type)
    if query.lifecycle:
        conditions.append(columns.lifecycle == query.lifecycle)
    if query.owner:
        conditions.append(columns.owner_ref == filter_ref(query.owner, "group"))
    if query.owners is not None:
        owners = sorted(query.owners)
        conditions.append(columns.owner_ref.in_(owners) if owners else false())
    if query.system:
        conditions.append(columns.system_ref == filter_ref(query.system, "system"))
    if query.tag and columns is TAG_COLUMNS:
        conditions.append(columns.tag == tag_key(session, query.tag))
    elif query.tag and columns is not _COLUMNS:  # other rows of entities: by their refs
        tagged = sa_select(_COLUMNS.ref).where(*tag_conditions(session, query.tag))
        conditions.append(columns.ref.in_(tagged))
    elif query.tag:
        conditions += tag_conditions(session, query.tag)
    if not query.include_orphans:
        conditions.append(columns.orphan.is_(False))
    return conditions


def _filter_values(query: EntityQuery) -> dict[str, str]:
    """Return the filters' values as stored: kind lower-cased ("all": none), refs as keys."""
    return {
        "kind": "" if query.kind.lower() == ALL_KINDS else query.kind.lower(),
        "type": query.type,
        "lifecycle": query.lifecycle,
        "owner": filter_ref(query.owner, "group") if query.owner else "",
        "system": filter_ref(query.system, "system") if query.system else "",
    }


def _facet_total(session: Session, query: EntityQuery) -> int | None:
    """Return the total of a list with at most one filter from the facet counts, else None.

    The import keeps those counts with the rows they count (orphans included, as here),
    so the default list (one kind) is not counted row by row: 40,000 components took
    PostgreSQL a 50 ms scan of the table.
    """
    if query.owners is not None or not query.include_orphans or query.tag:
        return None
    given = {facet: value for facet, value in _filter_values(query).items() if value}
    if len(given) > 1 or any("\x00" in value for value in given.values()):
        return None
    if not given:
        return counted_in_all(session)
    [(facet, value)] = given.items()
    return counted_by_facet(session, facet, value)


def _fixed_by_filter(query: EntityQuery) -> bool:
    """Whether a filter gives every row the sort column's value (the index then serves)."""
    return bool(
        (query.sort == "type" and query.type)
        or (query.sort == "lifecycle" and query.lifecycle)
        or (query.sort == "owner" and query.owner)
        or (query.sort == "kind" and query.kind and query.kind.lower() != ALL_KINDS)
    )


def _sqlite_hits(tokens: list[str]) -> CTE:
    """Return the FTS5 matches, computed before any filter is applied.

    ``MATERIALIZED`` keeps SQLite from driving the query from a filter's index (say all
    4,000 components) and re-running the full-text match for each of those rows. The
    match leaves out ``search_facets``, the filters' words (migration 0017).
    """
    match = fts_match(TEXT_COLUMNS, tokens)
    hits = (
        sa_select(_FTS.c.rowid.label("id"))
        .where(text("catalog_entity_fts MATCH :match").bindparams(match=match))
        .cte("hits")
    )
    return hits.prefix_with("MATERIALIZED") if _MATERIALIZED else hits


def _search_page(
    session: Session,
    hits: CTE | None,
    conditions: list[ColumnElement[bool]],
    order: list[SortKey],
    limit: int,
    offset: int,
    *,
    count: bool = True,
    columns: Any = _COLUMNS,
) -> tuple[list[Entity], int | None]:
    """Return one page of matches in a chosen sort and their total, from one full-text match.

    Sorting needs every match anyway: the matches are sorted and counted on narrow rows
    (id and sort keys, ``count(*) OVER ()``), and only the page's entities are then read
    whole, instead of matching once for the page and once more for the count. The total
    is None when only a too-far offset left the page empty. ``columns``: the table the
    conditions and keys are over (the entities, or PostgreSQL's ``catalog_search``).
    """
    dialect = session.get_bind().dialect.name
    keys = [key.expression.label(f"key{index}") for index, key in enumerate(order)]
    total = func.count().over() if count else literal_column("NULL")
    narrow = sa_select(columns.id, total.label("total"), *keys)
    if hits is not None:
        narrow = narrow.join_from(columns.id.table, hits, hits.c.id == columns.id)
    page = (
        narrow.where(*conditions)
        .order_by(
            *(
                term
                for label, key in zip(keys, order, strict=True)
                for term in SortKey(label, key.descending, key.nullable).order_by(dialect)
            )
        )
        .limit(limit)
        .offset(offset)
        .subquery("page")
    )
    statement = (
        select(Entity, page.c.total)
        .join(page, page.c.id == col(Entity.id))
        .order_by(*outer_order(page, keys, order, dialect))
    )
    rows = session.exec(statement).all()
    if not rows or not count:
        return [entity for entity, _total in rows], 0 if offset == 0 and count else None
    return [entity for entity, _total in rows], rows[0][1]


def _order(query: EntityQuery, sorts: Sorts) -> list[SortKey]:
    """Return the list's ``ORDER BY`` keys over the table of ``sorts``, the ref last."""
    order: list[SortKey]
    if query.sort in sorts.by_column:
        order = [key.flipped(query.desc) for key in sorts.by_column[query.sort]]
        if _fixed_by_filter(query):  # every row has the same value: only the name sorts
            order = order[1:]
    elif query.kind and query.kind.lower() != ALL_KINDS:
        order = [sorts.name]  # one kind: the kind-first index of the name sort serves it
    else:
        order = [sorts.kind, sorts.name]
    # Names repeat across kinds and namespaces: the unique ref keeps pages from overlapping.
    return [*order, SortKey(sorts.ref.expression, order[-1].descending)]


def list_entities(session: Session, query: EntityQuery) -> EntityPage:
    """Return one page of entities matching ``query``, best matches first when searching.

    A search without a chosen sort lists its matches in tiers (see
    :mod:`portal.catalog.search_tiers`); with one, in that sort's order.
    """
    limit = max(1, min(query.limit, MAX_LIMIT))
    offset = min(max(0, query.offset), MAX_OFFSET)
    tokens = _tokens(query.q)
    dialect = session.get_bind().dialect.name
    if not tokens and exact_tag(query.tag):
        # Browsing by one tag: its rows filter, sort and count alone (see portal.catalog.tags).
        conditions = _filters(session, query, TAG_COLUMNS)
        tagged, count = tagged_page(session, conditions, _order(query, TAG_SORTS), limit, offset)
        return EntityPage(items=tagged, total=count, query=query)
    if tokens and query.sort not in ENTITY_SORTS.by_column:
        best, matches = tiered_page(session, _tiers(session, query, tokens), limit, offset)
        return EntityPage(items=best, total=matches, query=query)
    if tokens and dialect == "postgresql":
        return _postgres_search(session, query, tokens, limit, offset)
    conditions = _filters(session, query)
    hits = _sqlite_hits(tokens) if tokens else None
    order = _order(query, ENTITY_SORTS)
    total: int | None = None
    if tokens:
        items, total = _search_page(session, hits, conditions, order, limit, offset)
    else:
        # Browsing: the sort's index yields the page, and the count reads a filter's index.
        statement = (
            select(Entity)
            .where(*conditions)
            .order_by(*(term for key in order for term in key.order_by(dialect)))
        )
        items = list(session.exec(statement.limit(limit).offset(offset)).all())
        total = _facet_total(session, query)
    if total is None:
        counter = select(func.count()).select_from(Entity)
        if hits is not None:
            counter = counter.join(hits, hits.c.id == col(Entity.id))
        total = session.exec(counter.where(*conditions)).one()
    return EntityPage(items=items, total=total, query=query)


def _tiers(session: Session, query: EntityQuery, tokens: list[str]) -> TieredSearch:
    """Return the search's tiers on this database."""
    if session.get_bind().dialect.name == "postgresql":
        return PostgresTiers(session, tokens, _filters(session, query, SEARCH_COLUMNS))
    filters = _filter_values(query)
    words = [facet_word(facet, value) for facet, value in filters.items() if value]
    if query.owners:
        words.append("(" + " OR ".join(facet_word("owner", o) for o in sorted(query.owners)) + ")")
    # A tag, leaving orphans out, "my teams" without a team, a NUL (matches nothing): not
    # in the index's words; the tiers are then counted from the entity rows.
    counted = (
        not query.tag
        and query.include_orphans
        and query.owners != frozenset()
        and not any("\x00" in value for value in filters.values())
    )
    facets = " AND ".join(words) if counted and words else None
    return SqliteTiers(session, tokens, _filters(session, query), facets, counted)


def _postgres_search(
    session: Session, query: EntityQuery, tokens: list[str], limit: int, offset: int
) -> EntityPage:
    """Return a page of PostgreSQL's matches in the chosen sort, read from ``catalog_search``."""
    conditions = _filters(session, query, SEARCH_COLUMNS)
    match = postgres_match(tokens)
    items, total = _search_page(
        session,
        None,
        [*conditions, match],
        _order(query, SEARCH_SORTS),
        limit,
        offset,
        columns=SEARCH_COLUMNS,
    )
    if total is None:  # only a page past the end: count the matches
        counter = sa_select(func.count()).select_from(SEARCH).where(*conditions, match)
        total = session.execute(counter).scalar_one()
    return EntityPage(items=items, total=total, query=query)


def facets(session: Session) -> dict[str, list[str]]:
    """Return the distinct values offered by the list filters (kept by the import).

    Shared between requests until the next import changes them: read-only.
    """
    return remembered(session, "values", lambda: facet_values(session))
