"""A batch's progress: where each service's update change is, and a summary.

Read from the batch's changes and their checks; nothing of it is stored twice. A change
whose ``template conflicts`` check failed is **conflicted** (its hunks are that check's
findings), as is one that main moved under (``conflicted``, see portal.changes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from portal.changes.models import Change, ChangeStatus, CheckRun
from portal.fleet.models import UpdateBatch
from portal.review.template_conflicts import CHECK as CONFLICTS_CHECK

# The order a batch's summary lists its states in.
STATES = (
    "rendering",
    "checking",
    "ready",
    "conflicted",
    "changes_requested",
    "merged",
    "rejected",
    "failed",
    "skipped",
)
FINISHED = frozenset({"ready", "conflicted", "changes_requested", "merged", "rejected", "failed"})


@dataclass(frozen=True)
class ServiceProgress:
    """One service of a batch: its change (if one was made) and where that change is."""

    service: str
    state: str
    change_id: str | None = None
    detail: str = ""


@dataclass
class BatchProgress:
    """Every service of a batch and how many are in each state."""

    batch: UpdateBatch
    services: list[ServiceProgress] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        """Return the number of services in each state, in :data:`STATES` order."""
        counts = Counter(entry.state for entry in self.services)
        return {state: counts[state] for state in STATES if counts[state]}

    @property
    def done(self) -> bool:
        """Whether no change of the batch is still being rendered or checked."""
        return all(entry.state in FINISHED or entry.state == "skipped" for entry in self.services)


def _state(change: Change, conflicted: bool) -> str:
    if change.status == ChangeStatus.CONFLICTED or (
        conflicted and change.status in (ChangeStatus.READY, ChangeStatus.CHANGES_REQUESTED)
    ):
        return "conflicted"
    return change.status.value


def progress(session: Session, batch: UpdateBatch) -> BatchProgress:
    """Return where each service of ``batch`` is."""
    ids = list(batch.changes.values())
    changes = {
        change.id: change
        for change in session.exec(select(Change).where(col(Change.id).in_(ids))).all()
    }
    conflicted = set(
        session.exec(
            select(CheckRun.change_id)
            .where(col(CheckRun.change_id).in_(ids), CheckRun.name == CONFLICTS_CHECK)
            .where(col(CheckRun.status).in_(("failed", "error")))
        ).all()
    )
    result = BatchProgress(batch)
    for service, change_id in batch.changes.items():
        change = changes.get(change_id)
        if change is None:
            result.services.append(ServiceProgress(service, "failed", change_id, "change gone"))
            continue
        detail = change.error or ""
        state = _state(change, change_id in conflicted)
        result.services.append(ServiceProgress(service, state, change_id, detail))
    for service, why in batch.skipped.items():
        result.services.append(ServiceProgress(service, "skipped", None, why))
    return result
