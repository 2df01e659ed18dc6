"""The tag filter's index: one ``catalog_tag`` row per entity and tag, kept by the import.

The filter's meaning is unchanged: ``tags_text`` holds the value as whole words, compared
as the database compares text (SQLite's ``LIKE`` ignores ASCII case, PostgreSQL's does
not). Stored tags are single lower-case ASCII words (validation requires it), so a
one-word value matches exactly the entities whose stored tag equals it, lower-cased in
ASCII on SQLite: the tag rows answer alone. Each holds a copy of its entity's list
columns, so such a list is filtered, sorted and counted from them (:func:`tagged_page`):
reading 5,000 tagged entities whole to sort them took PostgreSQL 40 to 90 ms at 100,000
entities, walking a sort's index and testing each entity's tags as long. Any other value
keeps the word test, with the tag rows narrowing the rows it runs on.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    String,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    update,
)
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from portal.catalog.models import Entity, Tag
from portal.catalog.sort_keys import (
    LIST_COLUMNS,
    SortKey,
    Sorts,
    outer_order,
    shown_key,
    sorts_of,
)

_ENTITY = SQLModel.metadata.tables[Entity.__tablename__].c
_TAG_TABLE = SQLModel.metadata.tables[Tag.__tablename__]
TAG_COLUMNS = _TAG_TABLE.c
TAG_SORTS: Sorts = sorts_of(TAG_COLUMNS, TAG_COLUMNS.name_key, TAG_COLUMNS.entity_ref)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def tag_rows(ref: str, tags_text: str) -> list[dict[str, Any]]:
    """Return the ``catalog_tag`` keys of one entity (each tag once)."""
    return [{"entity_ref": ref, "tag": tag} for tag in dict.fromkeys(tags_text.split())]


def _copied() -> dict[str, ColumnElement[Any]]:
    """Return the tag row's list columns as computed from its entity's row."""
    copied: dict[str, ColumnElement[Any]] = {name: _ENTITY[name] for name in LIST_COLUMNS}
    copied["name_key"] = shown_key(_ENTITY.title, _ENTITY.name)
    return copied


def insert_tags(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert tag rows (:func:`tag_rows`) with their stored entity's list columns.

    The database copies the columns and lowers the shown name itself, in one statement,
    so a tag row sorts exactly as its entity does in the entity table's indexes.
    """
    if not rows:
        return
    pairs: Any
    if connection.dialect.name == "postgresql":
        refs = bindparam("refs", [row["entity_ref"] for row in rows], type_=ARRAY(String))
        tags = bindparam("tags", [row["tag"] for row in rows], type_=ARRAY(String))
        pairs = func.unnest(refs, tags).table_valued("ref", "tag").render_derived(name="t")
        ref, tag = pairs.c.ref, pairs.c.tag
    else:
        listed = json.dumps([[row["entity_ref"], row["tag"]] for row in rows])
        pairs = func.json_each(bindparam("pairs", listed)).table_valued("value").alias("t")
        ref = func.json_extract(pairs.c.value, "$[0]")
        tag = func.json_extract(pairs.c.value, "$[1]")
    copied = _copied()
    source = sa_select(_ENTITY.ref, tag, *copied.values()).select_from(
        pairs.join(_ENTITY.ref.table, _ENTITY.ref == ref)
    )
    connection.execute(insert(_TAG_TABLE).from_select(["entity_ref", "tag", *copied], source))


def sync_tag_columns(connection: Connection) -> None:
    """Copy the list columns of entities changed without being rewritten into their tag rows.

    An owner's new title changes ``owner_sort`` of what it owns, an orphaned entity its
    ``orphan`` and ``updated_at``: only the tag rows that differ are written.
    """
    copied = _copied()
    connection.execute(
        update(_TAG_TABLE)
        .where(TAG_COLUMNS.entity_ref == _ENTITY.ref)
        .where(or_(*(TAG_COLUMNS[name].is_distinct_from(value) for name, value in copied.items())))
        .values(**copied)
    )


def exact_tag(tag: str) -> bool:
    """Whether ``tag`` is one word that the tag rows answer alone (see the module)."""
    return bool(tag) and tag.split() == [tag] and "\x00" not in tag


def tag_key(session: Session, tag: str) -> str:
    """Return the stored tag that a one-word filter value equals on this database."""
    return tag.translate(_ASCII_LOWER) if session.get_bind().dialect.name == "sqlite" else tag


def tag_conditions(session: Session, tag: str) -> list[ColumnElement[bool]]:
    """Return the conditions on entities of ``tag=...`` (a list reads :func:`tagged_page`)."""
    words = tag.split()
    if exact_tag(tag):
        tagged = sa_select(TAG_COLUMNS.entity_ref).where(TAG_COLUMNS.tag == tag_key(session, tag))
        return [_ENTITY.ref.in_(tagged)]
    padded: ColumnElement[str] = literal_column("' '") + _ENTITY.tags_text + literal_column("' '")
    exact = padded.contains(f" {tag} ", autoescape=True)
    if not words:
        return [exact]
    # Every entity the word test accepts has the first word among its tags.
    first = tag_key(session, words[0])
    tagged = sa_select(TAG_COLUMNS.entity_ref).where(TAG_COLUMNS.tag == first)
    return [_ENTITY.ref.in_(tagged), exact]


def tagged_page(
    session: Session,
    conditions: list[ColumnElement[bool]],
    order: list[SortKey],
    limit: int,
    offset: int,
) -> tuple[list[Entity], int]:
    """Return one page of the entities whose tag rows meet ``conditions``, and their total.

    ``conditions`` and ``order`` are over the tag rows (:data:`TAG_COLUMNS`,
    :data:`TAG_SORTS`), one of the conditions naming the tag.
    """
    dialect = session.get_bind().dialect.name
    keys = [key.expression.label(f"key{index}") for index, key in enumerate(order)]
    page = (
        sa_select(TAG_COLUMNS.entity_ref, *keys)
        .where(*conditions)
        .order_by(*(term for key in order for term in key.order_by(dialect)))
        .limit(limit)
        .offset(offset)
        .subquery("page")
    )
    statement = (
        select(Entity)
        .join(page, page.c.entity_ref == col(Entity.ref))
        .order_by(*outer_order(page, keys, order, dialect))
    )
    items = list(session.exec(statement).all())
    counter = sa_select(func.count()).select_from(_TAG_TABLE).where(*conditions)
    return items, session.execute(counter).scalar_one()
