"""What the change page shows: progress, checks grouped by environment, the diff, comments.

The routes (:mod:`portal.review.routes`, :mod:`portal.review.comment_routes`) parse the
request and render; everything the page needs is gathered here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, Request
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.catalog.deployed import change_deployments
from portal.changes.models import (
    REVISABLE,
    UPDATE_KIND,
    WORK_STATUSES,
    AuditEvent,
    Change,
    ChangeStatus,
    CheckRun,
)
from portal.changes.runtime import ChangesRuntime
from portal.changes.store import audit_of, checks_of, get_change
from portal.clock import utcnow
from portal.integrations.git import GitError
from portal.review.comments import BODY_MAX_CHARS, comments_of, may_comment, resolver
from portal.review.decide import DECIDABLE, may_review, may_revise
from portal.review.diff_view import DiffView, load_view
from portal.review.gate import REASON_MAX_LENGTH, REASON_MIN_LENGTH, gate_of
from portal.review.vendored import TemplateFiles

STEPS = (
    ("validate", "Validate the answers"),
    ("render", "Render the template"),
    ("commit", "Commit on the branch"),
    ("checks", "Run the checks"),
)


@dataclass
class CheckGroup:
    """The checks of one environment (or of the service files, ``environment`` None)."""

    environment: str | None
    runs: list[tuple[str, CheckRun]] = field(default_factory=list)  # (check, run)

    @property
    def label(self) -> str:
        """Name the group for a heading."""
        return f"Environment {self.environment}" if self.environment else "Service files"


@dataclass(frozen=True)
class ChangesRequest:
    """The latest "request changes": who asked, when, what, and on which revision."""

    event: AuditEvent
    revision: int


def ago(moment: datetime, now: datetime | None = None) -> str:
    """Say how long ago ``moment`` was, briefly (``3 min ago``)."""
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they are UTC
        moment = moment.replace(tzinfo=UTC)
    seconds = max(0, int(((now or utcnow()) - moment).total_seconds()))
    minutes, hours = seconds // 60, seconds // 3600
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    return f"{hours} h ago" if hours < 48 else f"{hours // 24} days ago"


def group_checks(runs: list[CheckRun]) -> list[CheckGroup]:
    """Group check runs by their environment, in run order; the service files' checks first.

    Within a group a check is named without its environment (``schema``, not
    ``schema (prod)``).
    """
    groups: dict[str | None, CheckGroup] = {}
    for run in runs:
        environment = run.environment
        check = run.name.removesuffix(f" ({environment})") if environment else run.name
        groups.setdefault(environment, CheckGroup(environment)).runs.append((check, run))
    return sorted(groups.values(), key=lambda group: group.environment is not None)


def progress_steps(change: Change) -> list[dict[str, str]]:
    """Return the steps of a change in order, with the ones not started yet as ``waiting``."""
    recorded = {step["name"]: step for step in change.steps}
    failed = change.status is ChangeStatus.FAILED
    steps = []
    for name, label in STEPS:
        step = recorded.get(name, {})
        status = str(step.get("status", "waiting"))
        if failed and status == "running":
            status = "failed"
        detail = str(step.get("detail") or "")
        if name == "commit" and re.fullmatch(r"[0-9a-f]{40,64}", detail):
            detail = detail[:12]
        steps.append({"name": name, "label": label, "status": status, "detail": detail})
    finished = "failed" if failed else "waiting" if change.status in WORK_STATUSES else "done"
    steps.append({"name": "ready", "label": "Ready for review", "status": finished, "detail": ""})
    return steps


def latest_request(audit: list[AuditEvent]) -> ChangesRequest | None:
    """Return the last "request changes" of an audit log, with the revision it was about."""
    revision, found = 1, None
    for event in audit:
        if event.action == "revised":
            revision += 1
        elif event.action == "changes_requested":
            found = ChangesRequest(event, revision)
    return found


def load_change(session: Session, change_id: str) -> Change:
    """Return the change, or answer 404 naming it."""
    change = get_change(session, change_id)
    if change is None:
        raise HTTPException(404, f"There is no change {change_id}.")
    return change


def _why_not(change: Change, identity: Identity | None, admin_group: str) -> str | None:
    if identity is None:
        return "Sign in to review this change."
    reason = may_review(change, identity, admin_group)
    if reason is None:
        return None
    if identity.user_ref == change.requester_ref:
        return f"You requested this change, and {reason}."
    return f"You cannot decide on this change: {reason}."


def _actions(change: Change) -> list[str]:
    if change.status in DECIDABLE:
        return ["approve", "request-changes", "reject"]
    closable = (ChangeStatus.FAILED, ChangeStatus.CONFLICTED)
    return ["reject"] if change.status in closable else []


def _counts(checks: list[CheckRun]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in checks:
        counts[run.status] = counts.get(run.status, 0) + 1
    return counts


def diff_of(
    session: Session,
    changes: ChangesRuntime,
    templates: TemplateFiles,
    change: Change,
    *,
    since: str | None = None,
    expand: bool = False,
) -> tuple[DiffView | None, str]:
    """Return the diff view of a change that has a commit, or why there is none.

    A ``since`` that names no earlier revision raises
    :class:`~portal.review.revisions.SinceError` (the page answers 422 naming it).
    """
    if change.status in WORK_STATUSES:
        return None, ""  # the page shows neither diff nor checks until the work has ended
    if not change.commit_sha:
        return None, "Nothing was committed for this change."
    comments = comments_of(session, change.id)
    gitops = changes.request_gitops()
    try:
        view = load_view(gitops, templates, change, comments, since=since, expand=expand)
    except GitError as exc:
        return None, f"The diff cannot be shown: {exc}"
    return view, ""


def _resolvable_update(change: Change) -> bool:
    """Tell whether a template update can be revised now: its conflicts resolved in review."""
    return change.kind == UPDATE_KIND and change.status == ChangeStatus.READY


def change_context(
    request: Request,
    session: Session,
    changes: ChangesRuntime,
    change: Change,
    view: DiffView | None,
    diff_problem: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """Everything the change page shows; ``view`` is its diff (see :func:`diff_of`)."""
    admin_group = changes.settings.admin_group
    checks = checks_of(session, change.id)
    groups = group_checks(checks)
    identity: Identity | None = request.state.identity
    revise_url = changes.revise_link(change)
    audit = audit_of(session, change.id)
    return {
        "active": "reviews",
        "change": change,
        "working": change.status in WORK_STATUSES,
        "steps": progress_steps(change),
        "check_groups": groups,
        "check_counts": _counts(checks),
        "costs": [
            (group.environment, run)
            for group in groups
            for check, run in group.runs
            if check == "cost"
        ],
        "view": view,
        "diff": view.diff if view else None,
        "diff_problem": diff_problem,
        "may_comment": may_comment(change, identity),
        "may_resolve": resolver(change, identity, admin_group),
        "body_max": BODY_MAX_CHARS,
        "changes_request": latest_request(audit),
        "deployed": change_deployments(getattr(request.app.state, "sync_state", None), change),
        "audit": audit,
        "actions": _actions(change),
        "why_not": _why_not(change, identity, admin_group),
        "gate": gate_of(checks),
        "is_admin": identity is not None and identity.is_admin(admin_group),
        "admin_group": admin_group,
        "reason_length": (REASON_MIN_LENGTH, REASON_MAX_LENGTH),
        "revise_url": revise_url,
        "can_revise": revise_url is not None
        and identity is not None
        and (change.status in REVISABLE or _resolvable_update(change))
        and may_revise(change, identity, admin_group) is None,
        "ago": ago,
        "problem": "",
        "action": "",
        "comment": "",
        **extra,
    }
