"""Review pages: the list of changes and one change with its progress, checks, diff and audit.

A change page carries the Approve / Request changes / Reject forms for those allowed to
decide, and says why to everyone else. Beside the buttons it lists the checks that block an
approval and the warnings; with blocking checks, Approve gives way to an explanation, or
for a platform admin to "Approve over failing checks" with a written reason. What the page
shows is gathered in :mod:`portal.review.change_page`; one file on demand and the review
comments have their routes in :mod:`portal.review.comment_routes`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.changes.gitops import gitops_unavailable
from portal.changes.models import WORK_STATUSES, Change
from portal.changes.runtime import ChangesRuntime
from portal.changes.store import list_changes
from portal.db import SessionDep
from portal.deps import ChangesDep
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsUnavailableError
from portal.review.change_page import (
    ago,
    change_context,
    diff_of,
    group_checks,
    load_change,
    progress_steps,
)
from portal.review.comment_routes import router as comment_router
from portal.review.commit_routes import router as commit_router
from portal.review.decide import DecisionError, approve, reject, request_changes
from portal.review.diff import stylesheet
from portal.review.gate import Override
from portal.review.revisions import SinceError
from portal.review.vendored import app_template_files
from portal.ui.render import error_page, page, wants_fragment

__all__ = ["ago", "group_checks", "router"]

router = APIRouter(prefix="/reviews", include_in_schema=False)
router.include_router(comment_router)
router.include_router(commit_router)  # a commit of a service on main no change made

_HERE = Path(__file__).resolve().parent


@functools.cache
def _asset(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


def _page_context(
    request: Request,
    session: Session,
    changes: ChangesRuntime,
    change: Change,
    *,
    since: str | None = None,
    expand: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """Return the change page's context, its diff included (``since``: an earlier revision)."""
    templates = app_template_files(request)
    view, problem = diff_of(session, changes, templates, change, since=since, expand=expand)
    return change_context(request, session, changes, change, view, problem, **extra)


@router.get("", response_class=HTMLResponse)
def review_list(request: Request, session: SessionDep, all: bool = False) -> Response:
    """List open changes (or every change with ``?all=1``), newest first."""
    changes = list_changes(session, open_only=not all)
    context = {"active": "reviews", "changes": changes, "show_all": all, "ago": ago}
    return page(request, "review/list.html", context)


@router.get("/diff.css")
def diff_css() -> Response:
    """Serve the styles of diffs: Pygments' highlighting (light and dark) and the rows'."""
    headers = {"Cache-Control": "public, max-age=3600"}
    css = stylesheet() + _asset("review.css")
    return Response(css, media_type="text/css", headers=headers)


@router.get("/review.js")
def review_js() -> Response:
    """Serve the script that opens the comment form under a clicked line number."""
    headers = {"Cache-Control": "public, max-age=3600"}
    return Response(_asset("review.js"), media_type="text/javascript", headers=headers)


@router.get("/{change_id}", response_class=HTMLResponse)
def change_page(
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    change_id: str,
    since: Annotated[str | None, Query(max_length=20)] = None,
    expand: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """Show a change; htmx polls the ``progress`` block while the change is being worked on.

    When a poll finds the work finished, the whole change is sent instead and htmx is told
    to swap it in place of the page content, so checks and diff appear without a reload.
    ``?since=N`` shows the changes since revision N; ``?expand=all`` every file's diff.
    """
    change = load_change(session, change_id)
    polling = wants_fragment(request) and request.headers.get("HX-Target") == "progress"
    if polling and change.status in WORK_STATUSES:
        context = {"change": change, "working": True, "steps": progress_steps(change)}
        return page(request, "review/change.html", context, fragment="progress")
    try:
        if polling:
            announce = f"Finished: the change is {change.status.value.replace('_', ' ')}."
            context = _page_context(request, session, changes, change, announce=announce)
            response = page(request, "review/change.html", context, fragment="change")
            response.headers["HX-Retarget"] = "#change"
            response.headers["HX-Reswap"] = "outerHTML"
            return response
        context = _page_context(
            request, session, changes, change, since=since, expand=expand == "all"
        )
    except SinceError as exc:
        return error_page(request, "No such revision", str(exc), 422)
    return page(request, "review/change.html", context)


def _decide(
    request: Request,
    session: Session,
    changes: ChangesRuntime,
    change_id: str,
    action: str,
    comment: str = "",
    override: Override | None = None,
) -> Response:
    """Run one decision; 303 back to the change, or the page with the reason it was refused.

    ``comment`` is the request-changes or reject comment, or the override's reason: the
    page shows it again in its form when the decision is refused.
    """
    change = load_change(session, change_id)
    identity: Identity | None = request.state.identity
    if identity is None:
        message = "Sign in to review changes: decisions are recorded in your name."
        return error_page(request, "Sign in required", message, 401)
    settings = changes.settings
    try:
        if action in ("approve", "approve-override"):
            approve(session, change, identity, changes.request_gitops(), settings, override)
        elif action == "request-changes":
            request_changes(session, change, identity, settings, comment)
        else:
            reject(session, change, identity, changes.request_gitops(), settings, comment)
    except DecisionError as exc:
        # A missing comment or reason is a form validation error (400); refusals keep 403/409.
        status, problem = (400 if exc.status == 422 else exc.status), exc.message
    except GitOpsUnavailableError as exc:  # nothing was recorded; the same click may be retried
        status, problem = 503, gitops_unavailable(exc)
    except GitError as exc:  # e.g. a merge conflict: nothing was recorded
        status, problem = 409, f"The GitOps repository refused: {exc}"
    else:
        return RedirectResponse(f"/reviews/{change.id}#decision", status_code=303)
    session.rollback()
    context = _page_context(
        request, session, changes, change, problem=problem, action=action, comment=comment
    )
    return page(request, "review/change.html", context, status_code=status)


Comment = Annotated[str, Form()]
CheckNames = Annotated[list[str] | None, Form()]


@router.post("/{change_id}/approve", response_class=HTMLResponse)
def approve_change(
    request: Request, session: SessionDep, changes: ChangesDep, change_id: str
) -> Response:
    """Approve: merge the branch into main and register the new catalog entity."""
    return _decide(request, session, changes, change_id, "approve")


@router.post("/{change_id}/approve-override", response_class=HTMLResponse)
def approve_override_change(
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    change_id: str,
    reason: Comment = "",
    override_checks: CheckNames = None,
) -> Response:
    """Approve over failing checks (platform admins): the reason and the checks they read."""
    override = Override(reason, tuple(override_checks or ()))
    return _decide(request, session, changes, change_id, "approve-override", reason, override)


@router.post("/{change_id}/request-changes", response_class=HTMLResponse)
def request_changes_change(
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    change_id: str,
    comment: Comment = "",
) -> Response:
    """Send the change back to its author; the comment is required."""
    return _decide(request, session, changes, change_id, "request-changes", comment)


@router.post("/{change_id}/reject", response_class=HTMLResponse)
def reject_change(
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    change_id: str,
    comment: Comment = "",
) -> Response:
    """Reject: close the change and delete its branch."""
    return _decide(request, session, changes, change_id, "reject", comment)
