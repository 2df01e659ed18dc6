"""Search results best first: tiers read in name order (PostgreSQL's side: search_postgres).

A search without a chosen sort lists its matches in three tiers, each in the list's name
order (the shown name, then the ref):

0. every word of the query starts a word of the name or title, and the shown name starts
   with the query's first word: typing a service's name puts it first;
1. every word of the query starts a word of the name or title;
2. the others: a word only in the tags, the owner or the description.

Scoring every match (bm25, ``ts_rank``) and sorting them took 20 to 30 ms for the 23,720
matches of "api" at 100,000 entities. A tier in name order is read by walking the name
index until the page is full (dense tiers) or by sorting its few members (sparse ones),
and the tiers' sizes come from counts the full-text index answers on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from sqlalchemy import ColumnElement, ScalarSelect, TextClause, and_, func, not_, text
from sqlmodel import Session, col, select

from portal.catalog.models import Entity
from portal.catalog.sort_keys import ENTITY_SORTS

# A tier with at least this many members is read by walking the name index, else its
# members are read by id and sorted. A walk reads about (offset + limit) * entities /
# members index entries: at 100,000 entities, for the 1,821 services tagged "go",
# sorting took 5.7 ms and walking 1.5 ms.
DENSE_FROM = 1000
# The entity's text columns of the full-text index (not search_facets, the filters' words).
TEXT_COLUMNS = "{name title tags_text owner_ref description}"
_NAMED_COLUMNS = "{name title}"
_MATCHES = "IN (SELECT rowid FROM catalog_entity_fts WHERE catalog_entity_fts MATCH :m)"
_MEMBERS = f"catalog_entity.id {_MATCHES}"
_WALKED_MEMBERS = f"+catalog_entity.id {_MATCHES}"
_FTS_COUNTS = text(
    "SELECT (SELECT count(*) FROM catalog_entity_fts WHERE catalog_entity_fts MATCH :every),"
    " (SELECT count(*) FROM catalog_entity_fts WHERE catalog_entity_fts MATCH :named)"
)


class TieredSearch(Protocol):
    """One search's tiers (0, 1, 2) on one database."""

    def total(self) -> int | ScalarSelect[int]:
        """Return the number of matches, or the query counting them (read with the page)."""
        ...

    def size(self, tier: int) -> int:
        """Return the number of matches in ``tier``."""
        ...

    def page(self, tier: int, limit: int, offset: int) -> list[int]:
        """Return the ids of up to ``limit`` members of ``tier`` in name order, from ``offset``."""
        ...


def tiered_page(
    session: Session, search: TieredSearch, limit: int, offset: int
) -> tuple[list[Entity], int]:
    """Return one page of the tiers laid end to end, and the total number of matches.

    A tier is counted only when the page may start after it (``offset`` > 0): on
    PostgreSQL a count reads every match's row, the page only the rows it shows. The
    page's entities are read whole once, whichever tiers they come from.
    """
    ids: list[int] = []
    skip = offset
    for tier in range(3):
        if len(ids) == limit:
            break
        if skip:
            size = search.size(tier)
            if skip >= size:  # the page starts after this tier
                skip -= size
                continue
        ids += search.page(tier, limit - len(ids), skip)
        skip = 0
    total = search.total()
    if not ids:
        return [], total if isinstance(total, int) else int(session.exec(select(total)).one())
    if isinstance(total, int):
        rows = [(entity, total) for entity in session.exec(select(Entity).where(_in(ids)))]
    else:  # counted in the same round trip as the page's entities
        rows = list(session.exec(select(Entity, total.label("total")).where(_in(ids))))
    entities = {entity.id: entity for entity, _total in rows}
    return [entities[entity_id] for entity_id in ids], int(rows[0][1])


def _in(ids: list[int]) -> ColumnElement[bool]:
    return col(Entity.id).in_(ids)


def prefix_bounds(token: str) -> tuple[str, str]:
    """Return the range of strings (in code point order) that start with ``token``."""
    return token, token[:-1] + chr(ord(token[-1]) + 1)


def fts_match(columns: str, tokens: list[str]) -> str:
    """Return the FTS5 query "every token starts a word of ``columns``" (a column filter)."""
    return f"{columns}: (" + " AND ".join(f'"{token}"*' for token in tokens) + ")"


_FACET_LETTERS = {"kind": "k", "type": "t", "lifecycle": "l", "owner": "o", "system": "s"}


def facet_word(facet: str, value: str) -> str:
    """Return a filter's value as the word ``search_facets`` holds for it (migration 0017).

    A letter for the filter, then the value's UTF-8 bytes in hex: no value can be taken
    for another, or for the full-text query's syntax.
    """
    return f'"{_FACET_LETTERS[facet]}{value.encode().hex()}"'


@dataclass(frozen=True)
class SqliteTiers:
    """The tiers on SQLite: counted by FTS5, read from ``catalog_entity``'s name indexes.

    ``conditions`` are the list's filters on the entity columns, always applied; ``facets``
    the same filters as words of the full-text index (see :func:`facet_word`). When a
    filter has no such words (a tag, orphans left out), ``counted`` is False and the
    tiers are counted on the entity rows.
    """

    session: Session
    tokens: list[str]
    conditions: list[ColumnElement[bool]]
    facets: str | None
    counted: bool

    def _match(self, columns: str) -> str:
        match = fts_match(columns, self.tokens)
        return f"{match} AND {self.facets}" if self.facets else match

    @property
    def _named(self) -> str:
        return self._match(_NAMED_COLUMNS)

    @property
    def _other(self) -> str:
        return f"({self._match(TEXT_COLUMNS)}) NOT ({self._match(_NAMED_COLUMNS)})"

    def _starts(self) -> ColumnElement[bool]:
        low, high = prefix_bounds(self.tokens[0])
        shown = ENTITY_SORTS.name.expression
        return and_(shown >= low, shown < high)

    def _members(self, match: str, walk: bool) -> TextClause:
        """Return "the entity matches ``match``".

        ``walk``: the unary ``+`` keeps SQLite from reading the matches by id, so that it
        walks the name index in order, checking each entry against the set of matches.
        """
        return text(_WALKED_MEMBERS if walk else _MEMBERS).bindparams(m=match)

    def _counted(self, conditions: tuple[ColumnElement[bool] | TextClause, ...]) -> int:
        statement = select(func.count()).select_from(Entity).where(*self.conditions, *conditions)
        return int(self.session.exec(statement).one())

    @cached_property
    def _counts(self) -> tuple[int, int]:
        """Count every match and those of names and titles (tiers 0 and 1)."""
        every, named = self._match(TEXT_COLUMNS), self._named
        if not self.counted:  # a filter is not in the index: count the entity rows
            return (
                self._counted((self._members(every, walk=False),)),
                self._counted((self._members(named, walk=False),)),
            )
        row = self.session.connection().execute(_FTS_COUNTS, {"every": every, "named": named})
        total, named_count = row.one()
        return int(total), int(named_count)

    @cached_property
    def _prefixed(self) -> int:
        return self._counted((self._starts(), self._members(self._named, walk=True)))

    def total(self) -> int:
        """Return the number of matches."""
        return self._counts[0]

    def size(self, tier: int) -> int:
        """Return the number of matches in ``tier``."""
        total, named = self._counts
        return (self._prefixed, named - self._prefixed, total - named)[tier]

    def page(self, tier: int, limit: int, offset: int) -> list[int]:
        """Read a tier's members in name order (see :data:`DENSE_FROM`).

        Tier 1 is taken for as large as tiers 0 and 1 together: tier 0 is a range of the
        name index, rarely large, and counting it apart would cost a statement.
        """
        total, named = self._counts
        walk = (named if tier < 2 else total - named) >= DENSE_FROM
        condition: list[Any]
        if tier == 0:  # the prefix's range of the name index holds them all: walk it
            condition = [self._starts(), self._members(self._named, walk=True)]
        elif tier == 1:
            condition = [not_(self._starts()), self._members(self._named, walk)]
        else:
            condition = [self._members(self._other, walk)]
        statement = (
            select(Entity.id)
            .where(*self.conditions, *condition)
            .order_by(ENTITY_SORTS.name.expression, ENTITY_SORTS.ref.expression)
            .limit(limit)
            .offset(offset)
        )
        return [entity_id for entity_id in self.session.exec(statement) if entity_id is not None]
