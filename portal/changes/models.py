"""Tables of the change life cycle: a change (one branch of the GitOps repo), its checks, its audit.

The table names keep their ``review_`` prefix: they were created by the review flow, and
existing databases keep working without a rename.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from portal.clock import utcnow


class ChangeStatus(StrEnum):
    """Where a change is in its life; the JSON API reports these values."""

    RENDERING = "rendering"
    CHECKING = "checking"
    READY = "ready"
    CHANGES_REQUESTED = "changes_requested"
    MERGED = "merged"
    REJECTED = "rejected"
    FAILED = "failed"
    # Main changed the same lines since the change was proposed: never merged silently;
    # it is rejected, or proposed again on the new main.
    CONFLICTED = "conflicted"


OPEN_STATUSES = (
    ChangeStatus.RENDERING,
    ChangeStatus.CHECKING,
    ChangeStatus.READY,
    ChangeStatus.CHANGES_REQUESTED,
    ChangeStatus.CONFLICTED,
)
WORK_STATUSES = (ChangeStatus.RENDERING, ChangeStatus.CHECKING)
# A change sent back, or one that failed, can be revised with new answers.
REVISABLE = (ChangeStatus.CHANGES_REQUESTED, ChangeStatus.FAILED)


def new_change_id() -> str:
    """Return a short, unguessable public id for a change."""
    return uuid.uuid4().hex[:16]


EDIT_KIND = "edit"
"""The ``kind`` of a change that edits an existing service (``POST /api/changes``)."""
UPDATE_KIND = "template-update"
"""The ``kind`` of a change bringing a service to a newer version of its template."""


class Change(SQLModel, table=True):
    """A proposed change to the GitOps repository: a scaffold, or edits to an existing service."""

    __tablename__ = "review_change"

    id: str = Field(default_factory=new_change_id, primary_key=True, max_length=32)
    kind: str = Field(default="scaffold", max_length=40)
    title: str
    template: str = Field(max_length=120)
    template_version: str = Field(default="", max_length=60)
    service: str = Field(index=True, max_length=63)
    owner_ref: str = Field(max_length=300)
    system_ref: str | None = Field(default=None, max_length=300)
    requester_ref: str = Field(max_length=300)
    answers: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    branch: str = Field(max_length=200)
    commit_sha: str | None = Field(default=None, max_length=64)
    # Bumped when the author revises the answers after "request changes"; each revision is
    # one more commit on the branch, whose message says which revision it is.
    revision: int = Field(default=1)
    merge_sha: str | None = Field(default=None, max_length=64)
    status: ChangeStatus = Field(default=ChangeStatus.RENDERING, index=True, max_length=32)
    steps: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    error: str | None = None
    claimed_by: str | None = Field(default=None, max_length=120)
    claimed_at: datetime | None = None
    approved_by: str | None = Field(default=None, max_length=300)
    # A decision in progress (approve or reject): claimed by a compare-and-set before git
    # is touched, so concurrent decisions serialise; one left by a crash goes stale.
    decision: str | None = Field(default=None, max_length=20)
    decision_token: str | None = Field(default=None, max_length=32)
    decision_by: str | None = Field(default=None, max_length=300)
    decision_at: datetime | None = None
    # An approval over failed checks by a platform admin: why, and which checks it went over.
    # Written under the decision's claim before git is touched, so an approval a crash
    # interrupted after its merge is recorded with its override; None otherwise.
    override_reason: str | None = Field(default=None, max_length=2000)
    override_checks: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Who or what proposed an edit (a person, or an API token and the person who created
    # it), why, and the evidence the proposer supplied ({label, url | text | figure}).
    proposed_by: str | None = Field(default=None, max_length=300)
    reason: str | None = Field(default=None, max_length=5000)
    evidence: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CheckRun(SQLModel, table=True):
    """The result of one automatic check on a change."""

    __tablename__ = "review_check"

    id: int | None = Field(default=None, primary_key=True)
    change_id: str = Field(index=True, foreign_key="review_change.id", max_length=32)
    name: str = Field(max_length=120)
    # The environment an overlay check ran for (``schema (prod)`` has ``prod``); None for
    # the checks of the service's own files.
    environment: str | None = Field(default=None, max_length=63)
    status: str = Field(max_length=20)
    summary: str
    findings: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    duration_ms: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class AuditEvent(SQLModel, table=True):
    """Who did what to a change, and when; never updated or deleted."""

    __tablename__ = "review_audit"

    id: int | None = Field(default=None, primary_key=True)
    change_id: str = Field(index=True, foreign_key="review_change.id", max_length=32)
    actor_ref: str = Field(max_length=300)
    action: str = Field(max_length=40)
    detail: str = ""
    at: datetime = Field(default_factory=utcnow)
