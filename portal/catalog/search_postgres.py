"""PostgreSQL's full-text search, read from ``catalog_search``'s narrow rows.

``catalog_search`` (migration 0014, PostgreSQL only) holds one row per entity: its id and
ref, the list's filter and sort columns and the entity's weighted search vector, kept by
statement triggers on ``catalog_entity``. Matches are ranked, filtered, sorted and counted
there; only the page's entities are then read whole. Ranking the 24,000 matches of "api"
at 100,000 entities read that many whole entity rows (about 1 KB each) before: 47 ms,
against 13 ms from these rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CTE, ColumnElement, column, func, literal_column, table
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from portal.catalog.models import Entity
from portal.catalog.sort_keys import LIST_COLUMNS, Sorts, sorts_of

SEARCH = table(
    "catalog_search",
    *(column(name) for name in ("id", "ref", "name_key", *LIST_COLUMNS, "search_vector")),
)
SEARCH_COLUMNS = SEARCH.c
SEARCH_SORTS: Sorts = sorts_of(SEARCH_COLUMNS, SEARCH_COLUMNS.name_key, SEARCH_COLUMNS.ref)


def postgres_match(tokens: list[str]) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """Return the tsvector condition on the search rows and its rank (higher is better)."""
    tsquery = func.to_tsquery(
        literal_column("'simple'::regconfig"), " & ".join(f"{token}:*" for token in tokens)
    )
    vector = SEARCH_COLUMNS.search_vector
    return vector.bool_op("@@")(tsquery), func.ts_rank(vector, tsquery)


def postgres_hits(tokens: list[str]) -> CTE:
    """Return the matches with minus their rank (lower is better, as in FTS5).

    With the other sort keys, read from the rows the rank is computed from anyway: ranks
    tie a lot (every entity tagged "python" ranks the same), and the ties are ordered by
    name without reading each matching entity a second time.
    """
    match, score = postgres_match(tokens)
    hits = (
        sa_select(
            SEARCH_COLUMNS.id.label("id"),
            (-score).label("rank"),
            SEARCH_COLUMNS.name_key.label("name_key"),
            SEARCH_COLUMNS.ref.label("ref"),
        )
        .where(match)
        .cte("hits")
    )
    return hits.prefix_with("MATERIALIZED")


def postgres_best_page(
    session: Session, hits: CTE, limit: int, offset: int
) -> tuple[list[Entity], int | None]:
    """Return a page of the best matches, ordered from the matches alone (see postgres_hits)."""
    page = (
        sa_select(hits.c.id, hits.c.rank, hits.c.name_key, hits.c.ref)
        .order_by(hits.c.rank, hits.c.name_key, hits.c.ref)
        .limit(limit)
        .offset(offset)
        .subquery("page")
    )
    total = sa_select(func.count()).select_from(hits).scalar_subquery()
    statement = (
        select(Entity, total.label("total"))
        .join(page, page.c.id == col(Entity.id))
        .order_by(page.c.rank, page.c.name_key, page.c.ref)
    )
    rows = session.exec(statement).all()
    if not rows:
        return [], 0 if offset == 0 else None
    return [entity for entity, _total in rows], rows[0][1]
