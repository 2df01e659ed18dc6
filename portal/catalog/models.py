"""Database tables of the catalog and the small value types passed between its modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.clock import utcnow


class Entity(SQLModel, table=True):
    """One catalog entity, keyed by its lower-cased ref ``kind:namespace/name``."""

    __tablename__ = "catalog_entity"

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(index=True, unique=True, max_length=300)
    kind: str = Field(max_length=63)
    kind_key: str = Field(max_length=63)  # indexed with the sort keys (migration 0012)
    namespace: str = Field(max_length=63)
    name: str = Field(max_length=63)
    title: str | None = None
    description: str | None = None
    spec_type: str | None = Field(default=None, index=True, max_length=120)
    lifecycle: str | None = Field(default=None, index=True, max_length=120)
    owner_ref: str | None = Field(default=None, index=True, max_length=300)
    owner_sort: str | None = None  # the owner's shown name, lower-cased (sort_keys)
    system_ref: str | None = Field(default=None, index=True, max_length=300)
    tags_text: str = ""
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source_key: str = Field(index=True, max_length=2000)
    source_doc: int = 0
    source_line: int = 1
    name_line: int | None = None  # of metadata.name: where a later duplicate's problem points
    known_kind: bool = True
    orphan: bool = Field(default=False, index=True)
    content_hash: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)


class Relation(SQLModel, table=True):
    """A directed relation; each spec reference yields it and its inverse, both from ``origin``."""

    __tablename__ = "catalog_relation"
    # Covering: a page's relations are read from the index alone (migration 0016).
    __table_args__ = (Index("ix_catalog_relation_source", "source_ref", "type", "target_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    origin_ref: str = Field(index=True, max_length=300)
    source_ref: str = Field(max_length=300)
    type: str = Field(max_length=40)
    target_ref: str = Field(index=True, max_length=300)


class Tag(SQLModel, table=True):
    """One tag of one entity, with a copy of the entity's list columns (kept by the import).

    A list filtered by one tag is then filtered, sorted and counted from these narrow rows
    alone (migration 0013); only the page's entities are read whole.
    """

    __tablename__ = "catalog_tag"
    __table_args__ = (Index("ix_catalog_tag_tag", "tag", "entity_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    entity_ref: str = Field(index=True, max_length=300)
    tag: str = Field(max_length=63)
    # The entity's own columns, and name_key: its shown name lower-cased (sort_keys).
    kind_key: str = Field(default="", max_length=63)
    name_key: str = ""
    spec_type: str | None = Field(default=None, max_length=120)
    lifecycle: str | None = Field(default=None, max_length=120)
    owner_ref: str | None = Field(default=None, max_length=300)
    owner_sort: str | None = None
    system_ref: str | None = Field(default=None, max_length=300)
    orphan: bool = False
    updated_at: datetime | None = None


class Source(SQLModel, table=True):
    """A file the catalog read entities from, and the root registration that reached it."""

    __tablename__ = "catalog_source"
    __table_args__ = (UniqueConstraint("key", name="uq_catalog_source_key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=2000)
    root_key: str = Field(index=True, max_length=2000)
    is_root: bool = False
    entity_count: int = 0
    problem_count: int = 0
    # Digest of the text at the last read (see known_files); None: read it again next time.
    text_hash: str | None = Field(default=None, max_length=64)
    last_read_at: datetime = Field(default_factory=utcnow)


class Facet(SQLModel, table=True):
    """A value a list filter offers and how many entities carry it (see ``facets``)."""

    __tablename__ = "catalog_facet"

    facet: str = Field(primary_key=True, max_length=20)
    value: str = Field(primary_key=True)
    entity_count: int = 0
    # Owner values only: the owner entity's kind, title and name when the catalog has it.
    owner_kind: str | None = Field(default=None, max_length=63)
    owner_title: str | None = None
    owner_name: str | None = Field(default=None, max_length=63)


class Problem(SQLModel, table=True):
    """An import problem (a rejected document or an unreadable file), kept until the next read."""

    __tablename__ = "catalog_problem"

    id: int | None = Field(default=None, primary_key=True)
    source_key: str = Field(index=True, max_length=2000)
    doc_index: int | None = None
    line: int | None = None
    field_path: str | None = Field(default=None, max_length=300)
    entity_ref: str | None = Field(default=None, max_length=300)
    message: str
    created_at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True)
class ProblemReport:
    """A problem found while reading one source, before it is stored."""

    source: str
    message: str
    doc_index: int | None = None
    line: int | None = None
    field_path: str | None = None
    entity_ref: str | None = None

    def __str__(self) -> str:
        where = self.source
        if self.doc_index is not None:
            where += f" document {self.doc_index}"
        if self.line is not None:
            where += f" line {self.line}"
        what = f" field {self.field_path}:" if self.field_path else ""
        return f"{where}:{what} {self.message}"


@dataclass
class ImportReport:
    """What one import run did, for the CLI, the UI and the tests."""

    roots: list[str] = field(default_factory=list)
    sources_read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    orphaned: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    problems: list[ProblemReport] = field(default_factory=list)

    @property
    def entities_seen(self) -> int:
        """Return how many valid entities the run read."""
        return sum(self.by_kind.values())
