"""The audit of a model: every promotion and rollback proposed for it, newest first.

A promotion or rollback is an edit change whose ``answers["model"]`` says what it does
(``{name, environment, version, from_version, action}``, written by
:mod:`portal.models.promote`). The audit lists them in any status (open, merged,
rejected...) with who proposed, when, and when it merged: the time of its ``approved``
audit event, the one a merge records. A rollback reads it to find what served before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from portal.changes.models import EDIT_KIND, AuditEvent, Change, ChangeStatus

Action = Literal["promote", "rollback"]
ACTIONS: tuple[Action, ...] = ("promote", "rollback")
# The audit event a merge records (portal.review.decide).
MERGE_ACTION = "approved"


@dataclass(frozen=True)
class ModelChange:
    """One promotion or rollback of a model in one environment.

    ``version`` is the version proposed ("" unpins: the service serves the model it trains
    itself); ``from_version`` the one served on main when it was proposed ("" unpinned,
    None unknown).
    """

    change_id: str
    name: str
    environment: str
    action: Action
    version: str
    from_version: str | None
    status: ChangeStatus
    proposed_by: str
    proposed_at: datetime
    merged_at: datetime | None
    title: str

    @property
    def url(self) -> str:
        """The change's review page."""
        return f"/reviews/{self.change_id}"

    @property
    def merged(self) -> bool:
        """True once the change is on main."""
        return self.status is ChangeStatus.MERGED


def model_answers(answers: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return a change's ``answers["model"]`` when it is one the portal wrote, else None."""
    model = answers.get("model")
    if not isinstance(model, dict):
        return None
    if not isinstance(model.get("name"), str) or not isinstance(model.get("environment"), str):
        return None
    if model.get("action") not in ACTIONS or not isinstance(model.get("version"), str):
        return None
    return model


def _aware(moment: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _row(change: Change, model: dict[str, Any], merged_at: datetime | None) -> ModelChange:
    from_version = model.get("from_version")
    return ModelChange(
        change_id=change.id,
        name=model["name"],
        environment=model["environment"],
        action=model["action"],
        version=model["version"],
        from_version=from_version if isinstance(from_version, str) else None,
        status=ChangeStatus(change.status),
        proposed_by=change.proposed_by or change.requester_ref,
        proposed_at=_aware(change.created_at),
        merged_at=merged_at,
        title=change.title,
    )


def _merge_times(session: Session, changes: Sequence[Change]) -> dict[str, datetime]:
    """Return when each merged change of ``changes`` merged (one query)."""
    merged = [change.id for change in changes if change.status == ChangeStatus.MERGED]
    if not merged:
        return {}
    events = session.exec(
        select(AuditEvent).where(
            col(AuditEvent.change_id).in_(merged), AuditEvent.action == MERGE_ACTION
        )
    )
    found: dict[str, datetime] = {}
    for event in events:
        at = _aware(event.at)
        found[event.change_id] = max(at, found.get(event.change_id, at))
    # A merge settled without its event (never expected) still has a time: its last update.
    by_id = {change.id: change for change in changes}
    return {key: found.get(key, _aware(by_id[key].updated_at)) for key in merged}


def model_changes(
    session: Session, service: str, name: str | None = None, environment: str | None = None
) -> list[ModelChange]:
    """Return the promotions and rollbacks of ``service``'s models, newest first.

    ``name`` and ``environment`` narrow them to one model, one environment. The service's
    edit changes are read (an indexed column) and their answers filtered here, the same
    way on SQLite and PostgreSQL.
    """
    changes = list(
        session.exec(select(Change).where(Change.service == service, Change.kind == EDIT_KIND))
    )
    chosen: list[tuple[Change, dict[str, Any]]] = []
    for change in changes:
        model = model_answers(change.answers)
        if model is None or (name is not None and model["name"] != name):
            continue
        if environment is not None and model["environment"] != environment:
            continue
        chosen.append((change, model))
    merged = _merge_times(session, [change for change, _ in chosen])
    rows = [_row(change, model, merged.get(change.id)) for change, model in chosen]
    return sorted(rows, key=lambda row: (row.proposed_at, row.change_id), reverse=True)


def newest_merged(rows: Sequence[ModelChange]) -> list[ModelChange]:
    """Return the merged ones of ``rows``, the last merged first."""
    merged = [row for row in rows if row.merged and row.merged_at is not None]
    return sorted(merged, key=lambda row: row.merged_at or row.proposed_at, reverse=True)


def served_before(
    rows: Sequence[ModelChange], environment: str, current: str
) -> ModelChange | None:
    """Return the merged change that put ``current`` in ``environment``, the newest one.

    Its ``from_version`` is what served before; None when no merged change is recorded
    (the pin was set by hand, or before the portal proposed pins).
    """
    for row in newest_merged(rows):
        if row.environment == environment and row.version == current:
            return row
    return None
