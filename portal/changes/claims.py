"""Claiming a change: for a pipeline worker (one stage at a time), or for one decision.

Both claims are compare-and-set updates on the change's row, so they hold across threads,
processes and replicas, on SQLite and PostgreSQL alike; a claim whose holder died goes
stale and is taken over.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import Session, col, select

from portal.changes.models import WORK_STATUSES, Change, ChangeStatus
from portal.changes.store import audit
from portal.clock import utcnow

STALE_CLAIM = timedelta(minutes=10)
# A claim lost to another worker between the read and the update: try the next change.
_CLAIM_ATTEMPTS = 5
# A merge retries for a while when main keeps moving; a decision claimed this long ago
# belongs to a process that died between the claim and its outcome.
STALE_DECISION = timedelta(minutes=10)


def claim_next(
    session: Session, worker_id: str, statuses: Collection[ChangeStatus] = WORK_STATUSES
) -> Change | None:
    """Claim the oldest change in one of ``statuses`` that is unclaimed or claimed stale.

    Each stage of the pipeline claims its own status (``rendering`` or ``checking``).
    PostgreSQL uses ``FOR UPDATE SKIP LOCKED`` so replicas never take the same change;
    on SQLite the conditional update that follows decides, and a claim lost to another
    thread is retried on the next change.
    """
    wanted = list(statuses)
    for _attempt in range(_CLAIM_ATTEMPTS):
        stale = utcnow() - STALE_CLAIM
        claimable = and_(
            col(Change.status).in_(wanted),
            or_(col(Change.claimed_by).is_(None), col(Change.claimed_at) < stale),
        )
        query = select(Change).where(claimable).order_by(col(Change.created_at)).limit(1)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        change = session.exec(query).first()
        if change is None:
            session.rollback()
            return None
        # The status is part of the condition: a change another worker moved on to the
        # next stage meanwhile (and released) is not claimed for this one.
        claimed = session.execute(
            update(Change)
            .where(col(Change.id) == change.id, claimable)
            .values(claimed_by=worker_id, claimed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            session.refresh(change)
            return change
    return None


def release_claims(session: Session, abandoned: Callable[[str, datetime], bool]) -> int:
    """Make changes whose worker is gone claimable at once; return how many were released.

    A claim is released when ``abandoned(worker_id, claimed_at)`` says its worker is gone
    (the caller knows what a worker id means) or when it is older than ``STALE_CLAIM``.
    Claims of live workers, other replicas' included, stay. Each release is a
    compare-and-set on the claim that was read, so a change claimed anew meanwhile keeps
    its new claim.
    """
    stale = utcnow() - STALE_CLAIM
    claims = session.execute(
        select(Change.id, Change.claimed_by, Change.claimed_at).where(
            col(Change.status).in_(WORK_STATUSES), col(Change.claimed_by).is_not(None)
        )
    ).all()
    released = 0
    for change_id, worker_id, claimed_at in claims:
        if claimed_at is not None and claimed_at >= stale and not abandoned(worker_id, claimed_at):
            continue
        result = session.execute(
            update(Change)
            .where(
                col(Change.id) == change_id,
                col(Change.claimed_by) == worker_id,
                col(Change.claimed_at).is_(None)
                if claimed_at is None
                else col(Change.claimed_at) == claimed_at,
            )
            .values(claimed_by=None, claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        released += int(result.rowcount)  # type: ignore[attr-defined]
    session.commit()
    return released


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


@dataclass(frozen=True)
class DecisionClaim:
    """The right to carry out one decision on a change, won by a compare-and-set.

    ``interrupted`` is the ``(action, actor)`` of a stale claim this one replaced: that
    decision may have reached git before its process died, so git says what it did.
    """

    token: str
    interrupted: tuple[str, str] | None = None


def claim_decision(
    session: Session,
    change: Change,
    action: str,
    actor_ref: str,
    statuses: Collection[ChangeStatus],
) -> DecisionClaim | None:
    """Claim the decision on ``change`` while its status is one of ``statuses``.

    One conditional UPDATE: the row changes only when no live claim holds it (none, or
    the stale one read just before), so of concurrent deciders on SQLite or PostgreSQL
    exactly one wins. Returns None to the losers; ``change`` is refreshed either way.
    """
    session.refresh(change)
    seen = change.decision_token
    interrupted = (change.decision or "?", change.decision_by or "?") if seen else None
    held = (
        col(Change.decision_token).is_(None)
        if seen is None
        else and_(
            col(Change.decision_token) == seen,
            col(Change.decision_at) < utcnow() - STALE_DECISION,
        )
    )
    token = uuid.uuid4().hex
    result = session.execute(
        update(Change)
        .where(col(Change.id) == change.id, col(Change.status).in_(list(statuses)), held)
        .values(decision=action, decision_token=token, decision_by=actor_ref, decision_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(change)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return DecisionClaim(token, interrupted)


def release_decision(session: Session, change_id: str, token: str, *, unsure: bool) -> None:
    """Give a claimed decision up after its git step failed, so the change can be decided again.

    ``unsure``: git may have acted before the failure (a push that timed out may have
    landed). The claim then stays, stale at once, so the next decision asks git what
    happened first (as after a crash) instead of contradicting it.
    """
    session.rollback()
    values: dict[str, Any] = {"decision_at": utcnow() - 2 * STALE_DECISION}
    if not unsure:
        values = {
            "decision": None,
            "decision_token": None,
            "decision_by": None,
            "decision_at": None,
            "override_reason": None,
            "override_checks": None,
        }
    session.execute(
        update(Change)
        .where(col(Change.id) == change_id, col(Change.decision_token) == token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def note_override(
    session: Session, change: Change, token: str, reason: str | None, checks: list[str] | None
) -> bool:
    """Record on the change, under the decision's claim, the failed checks an approval goes over.

    Written before git is touched: an approval whose process dies after its merge is then
    settled by the next decider with the override it carried. ``None`` records that the
    approval overrides nothing. Returns False (nothing written) when ``token`` lost the claim.
    """
    result = session.execute(
        update(Change)
        .where(col(Change.id) == change.id, col(Change.decision_token) == token)
        .values(override_reason=reason, override_checks=checks)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(change)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def settle_decision(
    session: Session,
    change: Change,
    token: str,
    status: ChangeStatus,
    event: tuple[str, str, str],
    **values: Any,
) -> bool:
    """Record a decision's outcome and its one audit event, if ``token`` still holds the claim.

    ``event`` is ``(actor, action, detail)``; ``values`` are more columns to set
    (``merge_sha``, ``approved_by``). Returns False (nothing written) when the claim was
    taken over meanwhile: that decider settles the change from what git shows.
    """
    actor, action, detail = event
    audit(session, change.id, actor, action, detail)
    result = session.execute(
        update(Change)
        .where(col(Change.id) == change.id, col(Change.decision_token) == token)
        .values(
            status=status,
            error=None,
            decision=None,
            decision_token=None,
            decision_by=None,
            decision_at=None,
            updated_at=utcnow(),
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        session.refresh(change)
        return False
    session.commit()
    session.refresh(change)
    return True


def decide_without_git(
    session: Session,
    change: Change,
    status: ChangeStatus,
    statuses: Collection[ChangeStatus],
    event: tuple[str, str, str],
    **values: Any,
) -> bool:
    """Set ``status`` with one audit event in one conditional UPDATE (no git step to claim).

    Only while the status is one of ``statuses`` and no decision is in progress; returns
    False (nothing written) otherwise. ``values`` are more columns to set in the same
    UPDATE (a revision's answers). ``change`` is refreshed either way.
    """
    actor, action, detail = event
    audit(session, change.id, actor, action, detail)
    result = session.execute(
        update(Change)
        .where(
            col(Change.id) == change.id,
            col(Change.status).in_(list(statuses)),
            col(Change.decision_token).is_(None),
        )
        .values(status=status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    won = bool(result.rowcount == 1)  # type: ignore[attr-defined]
    if won:
        session.commit()
    else:
        session.rollback()
    session.refresh(change)
    return won
