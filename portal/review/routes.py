"""Review pages: the list of changes and one change with its progress, checks, diff and audit.

A change page carries the Approve / Request changes / Reject forms for those allowed to
decide, and says why to everyone else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.catalog.models import utcnow
from portal.db import SessionDep
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsUnavailableError
from portal.review.decide import (
    DECIDABLE,
    DecisionError,
    approve,
    may_review,
    may_revise,
    reject,
    request_changes,
)
from portal.review.diff import diff_of_commit, stylesheet
from portal.review.models import REVISABLE, WORK_STATUSES, Change, ChangeStatus, CheckRun
from portal.review.store import audit_of, checks_of, get_change, list_changes
from portal.scaffold.runtime import ScaffoldRuntime, gitops_unavailable
from portal.ui.render import error_page, page, wants_fragment

router = APIRouter(prefix="/reviews", include_in_schema=False)

STEPS = (
    ("validate", "Validate the answers"),
    ("render", "Render the template"),
    ("commit", "Commit on the branch"),
    ("checks", "Run the checks"),
)
OPEN_ALL_FILES_UP_TO = 1200  # diff lines; bigger diffs open only their small files
_CHECK_NAME = re.compile(r"^(?P<check>.+?) \((?P<environment>[^()]+)\)$")


@dataclass
class CheckGroup:
    """The checks of one environment (or of the service files, ``environment`` None)."""

    environment: str | None
    runs: list[tuple[str, CheckRun]] = field(default_factory=list)  # (check, run)

    @property
    def label(self) -> str:
        """Name the group for a heading."""
        return f"Environment {self.environment}" if self.environment else "Service files"


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
    """Group check runs by the environment in their name (``schema (prod)``), in run order."""
    groups: dict[str | None, CheckGroup] = {}
    for run in runs:
        match = _CHECK_NAME.match(run.name)
        check, environment = (match["check"], match["environment"]) if match else (run.name, None)
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
    return ["reject"] if change.status is ChangeStatus.FAILED else []


def _load(session: Session, change_id: str) -> Change:
    change = get_change(session, change_id)
    if change is None:
        raise HTTPException(404, f"There is no change {change_id}.")
    return change


def _runtime(request: Request) -> ScaffoldRuntime:
    runtime: ScaffoldRuntime = request.app.state.scaffold
    return runtime


def _change_context(
    request: Request, session: Session, change: Change, **extra: Any
) -> dict[str, Any]:
    """Everything the change page shows; the diff is read from git (cached per commit)."""
    runtime = _runtime(request)
    working = change.status in WORK_STATUSES
    diff, diff_problem = None, ""
    if working:
        pass  # the page shows neither diff nor checks until the work has ended
    elif change.commit_sha:
        try:
            diff = diff_of_commit(runtime.request_gitops(), change.commit_sha)
        except GitError as exc:
            diff_problem = f"The diff cannot be shown: {exc}"
    else:  # it failed before committing
        diff_problem = "Nothing was committed for this change."
    checks = checks_of(session, change.id)
    groups = group_checks(checks)
    identity: Identity | None = request.state.identity
    return {
        "active": "reviews",
        "change": change,
        "working": working,
        "steps": progress_steps(change),
        "check_groups": groups,
        "check_counts": _counts(checks),
        "costs": [
            (group.environment, run)
            for group in groups
            for check, run in group.runs
            if check == "cost"
        ],
        "diff": diff,
        "diff_problem": diff_problem,
        "open_all": diff is not None
        and sum(f.shown_lines for f in diff.files if not f.generated) <= OPEN_ALL_FILES_UP_TO,
        "audit": audit_of(session, change.id),
        "actions": _actions(change),
        "why_not": _why_not(change, identity, runtime.context.settings.admin_group),
        "can_revise": identity is not None
        and change.status in REVISABLE
        and may_revise(change, identity, runtime.context.settings.admin_group) is None,
        "ago": ago,
        "problem": "",
        "action": "",
        "comment": "",
        **extra,
    }


def _counts(checks: list[CheckRun]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in checks:
        counts[run.status] = counts.get(run.status, 0) + 1
    return counts


@router.get("", response_class=HTMLResponse)
def review_list(request: Request, session: SessionDep, all: bool = False) -> Response:
    """List open changes (or every change with ``?all=1``), newest first."""
    changes = list_changes(session, open_only=not all)
    context = {"active": "reviews", "changes": changes, "show_all": all, "ago": ago}
    return page(request, "review/list.html", context)


@router.get("/diff.css")
def diff_css() -> Response:
    """Serve the syntax-highlighting styles of diffs (generated once by Pygments)."""
    headers = {"Cache-Control": "public, max-age=3600"}
    return Response(stylesheet(), media_type="text/css", headers=headers)


@router.get("/{change_id}", response_class=HTMLResponse)
def change_page(request: Request, session: SessionDep, change_id: str) -> Response:
    """Show a change; htmx polls the ``progress`` block while the change is being worked on.

    When a poll finds the work finished, the whole change is sent instead and htmx is told
    to swap it in place of the page content, so checks and diff appear without a reload.
    """
    change = _load(session, change_id)
    polling = wants_fragment(request) and request.headers.get("HX-Target") == "progress"
    if polling and change.status in WORK_STATUSES:
        context = {"change": change, "working": True, "steps": progress_steps(change)}
        return page(request, "review/change.html", context, fragment="progress")
    if polling:
        announce = f"Finished: the change is {change.status.value.replace('_', ' ')}."
        context = _change_context(request, session, change, announce=announce)
        response = page(request, "review/change.html", context, fragment="change")
        response.headers["HX-Retarget"] = "#change"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    return page(request, "review/change.html", _change_context(request, session, change))


def _decide(
    request: Request, session: Session, change_id: str, action: str, comment: str = ""
) -> Response:
    """Run one decision; 303 back to the change, or the page with the reason it was refused."""
    change = _load(session, change_id)
    identity: Identity | None = request.state.identity
    if identity is None:
        message = "Sign in to review changes: decisions are recorded in your name."
        return error_page(request, "Sign in required", message, 401)
    runtime = _runtime(request)
    settings = runtime.context.settings
    try:
        if action == "approve":
            approve(session, change, identity, runtime.request_gitops(), settings)
        elif action == "request-changes":
            request_changes(session, change, identity, settings, comment)
        else:
            reject(session, change, identity, runtime.request_gitops(), settings, comment)
    except DecisionError as exc:
        # A missing comment is a form validation error (400); refusals keep 403/409.
        status, problem = (400 if exc.status == 422 else exc.status), exc.message
    except GitOpsUnavailableError as exc:  # nothing was recorded; the same click may be retried
        status, problem = 503, gitops_unavailable(exc)
    except GitError as exc:  # e.g. a merge conflict: nothing was recorded
        status, problem = 409, f"The GitOps repository refused: {exc}"
    else:
        return RedirectResponse(f"/reviews/{change.id}#decision", status_code=303)
    session.rollback()
    extra = {"problem": problem, "action": action, "comment": comment}
    context = _change_context(request, session, change, **extra)
    return page(request, "review/change.html", context, status_code=status)


Comment = Annotated[str, Form()]


@router.post("/{change_id}/approve", response_class=HTMLResponse)
def approve_change(request: Request, session: SessionDep, change_id: str) -> Response:
    """Approve: merge the branch into main and register the new catalog entity."""
    return _decide(request, session, change_id, "approve")


@router.post("/{change_id}/request-changes", response_class=HTMLResponse)
def request_changes_change(
    request: Request, session: SessionDep, change_id: str, comment: Comment = ""
) -> Response:
    """Send the change back to its author; the comment is required."""
    return _decide(request, session, change_id, "request-changes", comment)


@router.post("/{change_id}/reject", response_class=HTMLResponse)
def reject_change(
    request: Request, session: SessionDep, change_id: str, comment: Comment = ""
) -> Response:
    """Reject: close the change and delete its branch."""
    return _decide(request, session, change_id, "reject", comment)
