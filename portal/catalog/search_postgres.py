"""PostgreSQL's full-text search, read from ``catalog_search``'s narrow rows.

``catalog_search`` (migration 0014, PostgreSQL only) holds one row per entity: its id and
ref, the list's filter and sort columns and the entity's weighted search vector, kept by
statement triggers on ``catalog_entity``. Matches are filtered, sorted and counted there;
only the page's entities are then read whole. Reading the 24,000 matches of "api" at
100,000 entities from whole entity rows (about 1 KB each) took 47 ms, against 13 ms from
these rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    and_,
    column,
    func,
    literal_column,
    not_,
    table,
)
from sqlalchemy import select as sa_select
from sqlmodel import Session

from portal.catalog.search_tiers import prefix_bounds
from portal.catalog.sort_keys import LIST_COLUMNS, Sorts, sorts_of

SEARCH = table(
    "catalog_search",
    *(
        column(name)
        for name in ("id", "ref", "name_key", *LIST_COLUMNS, "search_vector", "name_vector")
    ),
)
SEARCH_COLUMNS = SEARCH.c
SEARCH_SORTS: Sorts = sorts_of(SEARCH_COLUMNS, SEARCH_COLUMNS.name_key, SEARCH_COLUMNS.ref)


def postgres_match(tokens: list[str], vector: str = "search_vector") -> ColumnElement[bool]:
    """Return "every token starts a word" of the row's ``vector`` (``name_vector``: names)."""
    tsquery = func.to_tsquery(
        literal_column("'simple'::regconfig"), " & ".join(f"{token}:*" for token in tokens)
    )
    return SEARCH_COLUMNS[vector].bool_op("@@")(tsquery)


@dataclass(frozen=True)
class PostgresTiers:
    """The tiers of :mod:`portal.catalog.search_tiers` on ``catalog_search``'s rows.

    Each tier is read in name order from the rows' indexes (migration 0017), which the
    planner walks for a dense tier and leaves for a sparse one. Names and titles are
    ``name_vector``, whose own statistics tell the planner which tier is which.

    Known limit: tier 1 (``NOT`` starting with the word) is estimated as if names held
    the word anywhere, while most names that hold it start with it. When tier 0 does not
    fill the page and tier 1 is nearly empty, the planner may walk the whole name index
    (66 ms for "booking" at 100,000 entities, measured with every tier in one statement;
    not among the benchmark's queries). Computing tiers in the counting pass instead
    cost 24 ms for "api", against 13 ms this way.
    """

    session: Session
    tokens: list[str]
    conditions: list[ColumnElement[bool]]

    def _starts(self) -> ColumnElement[bool]:
        # Byte order, which the index over name_key COLLATE "C" holds whatever the
        # database's collation: every name that starts with the word is in this range.
        low, high = prefix_bounds(self.tokens[0])
        key = SEARCH_COLUMNS.name_key.collate("C")
        return and_(key >= low, key < high)

    def _tier(self, tier: int) -> list[ColumnElement[bool]]:
        named = postgres_match(self.tokens, "name_vector")
        if tier == 0:
            return [named, self._starts()]
        if tier == 1:
            return [named, not_(self._starts())]
        return [postgres_match(self.tokens), not_(named)]

    def _count(self, conditions: list[ColumnElement[bool]]) -> ScalarSelect[int]:
        return (
            sa_select(func.count())
            .select_from(SEARCH)
            .where(*self.conditions, *conditions)
            .scalar_subquery()
        )

    def total(self) -> ScalarSelect[int]:
        """Return the query counting the matches, read with the page's entities.

        Counting reads every matching row; in the same statement as the page's entities
        it costs no round trip of its own.
        """
        return self._count([postgres_match(self.tokens)])

    def size(self, tier: int) -> int:
        """Return the number of matches in ``tier``."""
        return int(self.session.execute(sa_select(self._count(self._tier(tier)))).scalar_one())

    def page(self, tier: int, limit: int, offset: int) -> list[int]:
        """Read the ids of a tier's members in name order."""
        ids = (
            sa_select(SEARCH_COLUMNS.id)
            .where(*self.conditions, *self._tier(tier))
            .order_by(SEARCH_COLUMNS.name_key, SEARCH_COLUMNS.ref)
            .limit(limit)
            .offset(offset)
        )
        return list(self.session.execute(ids).scalars())
