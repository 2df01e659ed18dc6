"""The list's sort orders, written so that both databases read them from an index.

Sorting 40,000 components on an expression computed per row took 100 to 300 ms; walking
an index in order and stopping after the page takes well under one. Migration
``0012_catalog_scale`` creates, for every sort, one index over its keys and one with
``kind_key`` in front (the list page filters by kind by default). The expressions here
must stay exactly those of the indexes, literals included: a bound parameter inside
``nullif(title, '')`` would keep either database from matching them.

An owner's shown name lives in another row, so the import keeps it in ``owner_sort``
(:func:`refresh_owner_sort`) instead of the correlated subquery a sort cannot index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal_column, text, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel

from portal.catalog.models import Entity

_TABLE = SQLModel.metadata.tables[Entity.__tablename__]
_COLUMNS = _TABLE.c


def shown_key(title: ColumnElement[Any], name: ColumnElement[Any]) -> ColumnElement[Any]:
    """Return what the pages show for an entity (``display_name``), lower-cased to sort by."""
    return func.lower(func.coalesce(func.nullif(title, literal_column("''")), name))


# The entity's columns that the list filters and sorts by, beside its shown name: what the
# narrow rows of a tag (catalog_tag) and of PostgreSQL's search (catalog_search) copy.
LIST_COLUMNS = (
    "kind_key",
    "spec_type",
    "lifecycle",
    "owner_ref",
    "owner_sort",
    "system_ref",
    "orphan",
    "updated_at",
)


@dataclass(frozen=True)
class SortKey:
    """One ``ORDER BY`` term: an expression, its direction and whether it can be empty."""

    expression: ColumnElement[Any]
    descending: bool = False
    nullable: bool = False

    def flipped(self, flip: bool) -> SortKey:
        """Return the key reversed when ``flip`` is set (``desc=1``)."""
        return SortKey(self.expression, self.descending != flip, self.nullable)

    def order_by(self, dialect: str) -> list[ColumnElement[Any]]:
        """Return the ``ORDER BY`` terms: empty values last going up, first going down.

        That is PostgreSQL's default, which its plain indexes serve. SQLite puts NULL
        first and cannot read ``NULLS LAST`` from an index, so there the key is preceded
        by ``key IS NULL``, which its indexes hold as their first column.
        """
        key = self.expression
        ordered = key.desc() if self.descending else key.asc()
        if not self.nullable:
            return [ordered]
        if dialect == "sqlite":
            missing = key.is_(None)
            return [missing.desc() if self.descending else missing.asc(), ordered]
        return [ordered.nulls_first() if self.descending else ordered.nulls_last()]


def outer_order(
    page: Any, labels: Sequence[ColumnElement[Any]], order: Sequence[SortKey], dialect: str
) -> list[ColumnElement[Any]]:
    """Return the ``ORDER BY`` terms of a query over ``page``, a subquery of one list page.

    ``labels`` are the page's sort keys as it selected them (``key0``, ``key1``...), in the
    order of ``order``: the rows it joins come back in the page's own order.
    """
    return [
        term
        for label, key in zip(labels, order, strict=True)
        for term in SortKey(page.c[label.name], key.descending, key.nullable).order_by(dialect)
    ]


@dataclass(frozen=True)
class Sorts:
    """The sort keys of one table holding the list's columns (entities, or tag rows)."""

    by_column: dict[str, tuple[SortKey, ...]]
    kind: SortKey
    name: SortKey
    ref: SortKey


def sorts_of(columns: Any, name_key: ColumnElement[Any], ref: ColumnElement[Any]) -> Sorts:
    """Return the sorts over ``columns`` (``kind_key``, ``owner_sort``, ``spec_type``, ...).

    Every column sorts by what the list shows in it: names and owners by title, else name.
    """
    name = SortKey(name_key)
    return Sorts(
        by_column={
            "name": (name,),
            "kind": (SortKey(columns.kind_key), name),
            "owner": (SortKey(columns.owner_sort, nullable=True), name),
            "type": (SortKey(columns.spec_type, nullable=True), name),
            "lifecycle": (SortKey(columns.lifecycle, nullable=True), name),
            "updated": (SortKey(columns.updated_at, descending=True), name),
        },
        kind=SortKey(columns.kind_key),
        name=name,
        ref=SortKey(ref),
    )


ENTITY_SORTS = sorts_of(_COLUMNS, shown_key(_COLUMNS.title, _COLUMNS.name), _COLUMNS.ref)
SORTS = ENTITY_SORTS.by_column


def refresh_owner_sort(connection: Connection) -> None:
    """Set ``owner_sort`` where it is stale: the owner's shown name, else the owner ref.

    Only rows whose value changes are written (an import that changed one title rewrites
    the rows it owns, not the table).
    """
    owner = _TABLE.alias("owner_entity").c
    wanted = func.coalesce(
        sa_select(shown_key(owner.title, owner.name))
        .where(owner.ref == _COLUMNS.owner_ref)
        .scalar_subquery(),
        _COLUMNS.owner_ref,
    )
    connection.execute(
        update(_TABLE).where(_COLUMNS.owner_sort.is_distinct_from(wanted)).values(owner_sort=wanted)
    )


def prefill_owner_sort(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Fill ``owner_sort`` of rows loaded into an empty PostgreSQL catalog before they are.

    Their owners are among them or not in the catalog at all, so the value is known, with
    the names lower-cased by the database itself in one query. :func:`refresh_owner_sort`
    then updates nothing: rows updated in the loading transaction would leave the indexes
    built after it unusable while an older transaction is open (``indcheckxmin``).
    """
    by_ref = {row["ref"]: row for row in rows}
    shown: dict[str, str] = {}
    for row in rows:
        owner = by_ref.get(row["owner_ref"]) if row["owner_ref"] else None
        if owner is not None:
            shown[row["ref"]] = (
                owner["title"] if owner["title"] not in (None, "") else owner["name"]
            )
    names = sorted(set(shown.values()))
    lowered: dict[str, str] = {}
    if names:
        statement = text(
            "SELECT x, lower(x) FROM unnest(CAST(:names AS text[])) AS t(x)"
        ).bindparams(names=names)
        lowered = {name: low for name, low in connection.execute(statement)}
    for row in rows:
        name = shown.get(row["ref"])
        row["owner_sort"] = lowered[name] if name is not None else row["owner_ref"]
