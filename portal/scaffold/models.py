"""Tables of the scaffold domain: Copier templates registered by git URL."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from portal.clock import utcnow


class RegisteredTemplate(SQLModel, table=True):
    """A Copier template registered by git URL and ref, pinned to the commit it had then.

    Every replica mirrors it into its own data dir on first use, from ``url`` and ``ref``,
    and renders ``commit``: a branch or tag that moves later changes nothing until the
    template is registered again.
    """

    __tablename__ = "scaffold_template"

    name: str = Field(primary_key=True, max_length=63)
    url: str = Field(max_length=1000)
    ref: str = Field(max_length=250)
    commit: str = Field(max_length=64)
    title: str = Field(max_length=200)
    version: str = Field(max_length=60)
    registered_by: str = Field(max_length=300)
    registered_at: datetime = Field(default_factory=utcnow)
