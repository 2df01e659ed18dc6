"""Table of template update batches: one request to update several services of a template.

Each service gets its own change (kind ``template-update``, see
:mod:`portal.scaffold.updates`); the batch keeps which changes it made, so its progress is
read from their statuses and checks (:mod:`portal.fleet.batches`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from portal.clock import utcnow


def new_batch_id() -> str:
    """Return a short, unguessable public id for a batch."""
    return uuid.uuid4().hex[:16]


class UpdateBatch(SQLModel, table=True):
    """A request to bring services of one template to one of its versions."""

    __tablename__ = "fleet_update_batch"

    id: str = Field(default_factory=new_batch_id, primary_key=True, max_length=32)
    template: str = Field(index=True, max_length=120)
    to_ref: str = Field(max_length=250)
    requested_by: str = Field(max_length=300)
    # Answers given for the batch (new questions); the others keep each service's own.
    answers: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # {service: change id}, in the order the services were asked for.
    changes: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    # {service: why no change was made} (already at the version, refused, ...).
    skipped: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
