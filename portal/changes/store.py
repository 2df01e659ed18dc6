"""Reading and writing changes, their check runs and audit events (claiming: :mod:`.claims`)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from portal.changes.models import OPEN_STATUSES, AuditEvent, Change, CheckRun
from portal.clock import utcnow


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


def step_record(name: str, status: str, detail: str = "") -> dict[str, Any]:
    """Return one step's progress record as the change page shows it."""
    return {"name": name, "status": status, "detail": detail, "at": utcnow().isoformat()}


def set_step(change: Change, name: str, status: str, detail: str = "") -> None:
    """Record the progress of one step (shown live on the change page)."""
    steps: list[dict[str, Any]] = [dict(step) for step in change.steps if step["name"] != name]
    steps.append(step_record(name, status, detail))
    change.steps = steps
    change.updated_at = utcnow()
