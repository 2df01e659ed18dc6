"""Reading and writing changes, their checks and audit events; claiming work for workers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from portal.catalog.models import utcnow
from portal.review.models import (
    OPEN_STATUSES,
    WORK_STATUSES,
    AuditEvent,
    Change,
    ChangeStatus,
    CheckRun,
)

STALE_CLAIM = timedelta(minutes=10)


def audit(session: Session, change_id: str, actor_ref: str, action: str, detail: str = "") -> None:
    """Append one event to a change's audit log (committed by the caller)."""
    session.add(AuditEvent(change_id=change_id, actor_ref=actor_ref, action=action, detail=detail))


def get_change(session: Session, change_id: str) -> Change | None:
    """Return one change by its public id."""
    return session.get(Change, change_id)


def list_changes(session: Session, *, open_only: bool = True, limit: int = 100) -> list[Change]:
    """Return changes, newest first; by default only those still open."""
    query = select(Change).order_by(col(Change.created_at).desc()).limit(limit)
    if open_only:
        query = query.where(col(Change.status).in_(OPEN_STATUSES))
    return list(session.exec(query).all())


def open_change_for(session: Session, service: str) -> Change | None:
    """Return the open change that already proposes ``service``, if any."""
    return session.exec(
        select(Change).where(Change.service == service, col(Change.status).in_(OPEN_STATUSES))
    ).first()


def checks_of(session: Session, change_id: str) -> list[CheckRun]:
    """Return the check results of a change in the order they ran."""
    return list(
        session.exec(
            select(CheckRun).where(CheckRun.change_id == change_id).order_by(col(CheckRun.id))
        ).all()
    )


def audit_of(session: Session, change_id: str) -> list[AuditEvent]:
    """Return a change's audit log, oldest first."""
    return list(
        session.exec(
            select(AuditEvent).where(AuditEvent.change_id == change_id).order_by(col(AuditEvent.id))
        ).all()
    )


def replace_checks(session: Session, change_id: str, runs: list[CheckRun]) -> None:
    """Store a fresh set of check results for a change (a re-run replaces the old set)."""
    for old in checks_of(session, change_id):
        session.delete(old)
    session.add_all(runs)


def set_step(change: Change, name: str, status: str, detail: str = "") -> None:
    """Record the progress of one step (shown live on the change page)."""
    steps: list[dict[str, Any]] = [dict(step) for step in change.steps if step["name"] != name]
    steps.append({"name": name, "status": status, "detail": detail, "at": utcnow().isoformat()})
    change.steps = steps
    change.updated_at = utcnow()


def claim_next(session: Session, worker_id: str) -> Change | None:
    """Claim the oldest change that needs work, or one whose worker went silent.

    PostgreSQL uses ``FOR UPDATE SKIP LOCKED`` so replicas never take the same change;
    SQLite (one process) relies on the conditional update that follows.
    """
    stale = utcnow() - STALE_CLAIM
    query = (
        select(Change)
        .where(
            col(Change.status).in_(WORK_STATUSES),
            or_(col(Change.claimed_by).is_(None), col(Change.claimed_at) < stale),
        )
        .order_by(col(Change.created_at))
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    change = session.exec(query).first()
    if change is None:
        session.rollback()
        return None
    claimed = session.execute(
        update(Change)
        .where(
            col(Change.id) == change.id,
            or_(col(Change.claimed_by).is_(None), col(Change.claimed_at) < stale),
        )
        .values(claimed_by=worker_id, claimed_at=utcnow())
    )
    session.commit()
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(change)
    return change


def release_claims(session: Session) -> int:
    """Make changes whose worker died (a crash or a restart) claimable again at once."""
    result = session.execute(
        update(Change)
        .where(col(Change.status).in_(WORK_STATUSES), col(Change.claimed_by).is_not(None))
        .values(claimed_by=None, claimed_at=None)
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def finish(
    session: Session, change: Change, status: ChangeStatus, error: str | None = None
) -> None:
    """Set a change's status, drop its claim and commit."""
    change.status = status
    change.error = error
    change.claimed_by = None
    change.claimed_at = None
    change.updated_at = utcnow()
    session.add(change)
    session.commit()
