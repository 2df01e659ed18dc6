"""One file of a change on demand ("Show diff"), and inline review comments on its lines.

Paths arrive in URLs and forms; each is only looked up among the files the change's own
diff lists (an unknown one is a 404 or a refusal naming the field), never given to git or
the file system. Unsafe methods carry the CSRF token like every form of the portal.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.changes.models import Change
from portal.changes.runtime import ChangesRuntime
from portal.db import SessionDep
from portal.deps import ChangesDep, app_settings
from portal.review.change_page import ago, diff_of, load_change
from portal.review.comments import (
    BODY_MAX_CHARS,
    CommentError,
    Draft,
    add_comment,
    checked_line,
    may_comment,
    new_comment,
    resolve_comment,
    resolver,
)
from portal.review.diff_view import DiffView
from portal.review.revisions import SinceError
from portal.review.vendored import TemplateFiles, TemplateFilesDep
from portal.ui.render import error_page, page, wants_fragment

router = APIRouter()

Text = Annotated[str, Form(max_length=20_000)]
ShortQuery = Annotated[str, Query(max_length=4096)]
SIGN_IN = "Sign in to comment: comments are recorded in your name."


def _view(
    session: Session,
    changes: ChangesRuntime,
    templates: TemplateFiles,
    change: Change,
    since: str | None = None,
) -> DiffView:
    try:
        view, problem = diff_of(session, changes, templates, change, since=since)
    except SinceError as exc:
        raise HTTPException(422, str(exc)) from None
    if view is None:
        raise HTTPException(404, problem or "The change has no diff yet.")
    return view


def _context(request: Request, change: Change, view: DiffView, **extra: Any) -> dict[str, Any]:
    identity: Identity | None = request.state.identity
    admin = app_settings(request).admin_group
    return {
        "active": "reviews",
        "change": change,
        "view": view,
        "may_comment": may_comment(change, identity),
        "may_resolve": resolver(change, identity, admin),
        "body_max": BODY_MAX_CHARS,
        "ago": ago,
        "cols": 2,
        **extra,
    }


@router.get("/{change_id}/files/{path:path}", response_class=HTMLResponse)
def file_diff(
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    templates: TemplateFilesDep,
    change_id: str,
    path: str,
    since: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Show one file's diff: the fragment "Show diff" loads, or a page of its own."""
    change = load_change(session, change_id)
    view = _view(session, changes, templates, change, since)
    entry = view.diff.entry(path)
    if entry is None:
        raise HTTPException(404, f"{path[:200]!r} is not a file this change changes.")
    context = _context(request, change, view, entry=entry)
    context["may_comment"] = context["may_comment"] and view.since is None
    return page(request, "review/file.html", context, fragment="file")


def _cols(view: DiffView, path: str) -> int:
    entry = view.diff.entry(path)
    return 2 if entry is not None and entry.change == "added" else 3


def _refused(
    request: Request, change: Change, view: DiffView, draft: Draft, exc: CommentError
) -> Response:
    """Answer a refused comment: htmx gets the form again with the error (htmx swaps only 2xx)."""
    context = _context(request, change, view, draft=draft, error=str(exc), problem="")
    context["cols"] = _cols(view, draft.path)
    if wants_fragment(request):
        return page(request, "review/comment.html", context, fragment="form_row")
    context["problem"] = str(exc)
    return page(request, "review/comment.html", context, status_code=exc.status)


@router.get("/{change_id}/comments/new", response_class=HTMLResponse)
def comment_form(
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    templates: TemplateFilesDep,
    change_id: str,
    path: ShortQuery = "",
    side: Annotated[str, Query(max_length=10)] = "new",
    line: Annotated[str, Query(max_length=10)] = "",
    commit: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Show the form of a comment on one line (the row htmx puts under it, or a page)."""
    change = load_change(session, change_id)
    if request.state.identity is None:
        return error_page(request, "Sign in required", SIGN_IN, 401)
    view = _view(session, changes, templates, change)
    draft = Draft(path, side, line, commit=commit or view.diff.head)
    try:
        checked_line(change, view.whole, draft)
    except CommentError as exc:
        return _refused(request, change, view, draft, exc)
    context = _context(request, change, view, draft=draft, error="", problem="")
    context["cols"] = _cols(view, path)
    return page(request, "review/comment.html", context, fragment="form_row")


@router.post("/{change_id}/comments", response_class=HTMLResponse)
def add_line_comment(
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    templates: TemplateFilesDep,
    change_id: str,
    path: Text = "",
    side: Text = "",
    line: Text = "",
    commit: Text = "",
    body: Text = "",
) -> Response:
    """Store a comment on a line: its row for htmx, else back to the change at the comment."""
    change = load_change(session, change_id)
    identity: Identity | None = request.state.identity
    if identity is None:
        return error_page(request, "Sign in required", SIGN_IN, 401)
    view = _view(session, changes, templates, change)
    draft = Draft(path, side, line, body, commit)
    try:
        comment = add_comment(
            session, new_comment(change, view.whole, view.revision, identity, draft)
        )
    except CommentError as exc:
        session.rollback()
        return _refused(request, change, view, draft, exc)
    if not wants_fragment(request):
        return RedirectResponse(f"/reviews/{change.id}#{comment.anchor}", status_code=303)
    context = _context(request, change, view, comment=comment)
    context["cols"] = _cols(view, path)
    return page(request, "review/comment.html", context, fragment="thread_row")


@router.post("/{change_id}/comments/{comment_id}/resolve", response_class=HTMLResponse)
def resolve_line_comment(
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    templates: TemplateFilesDep,
    change_id: str,
    comment_id: int,
) -> Response:
    """Resolve a comment: the comment again for htmx, else back to it on the change page."""
    change = load_change(session, change_id)
    identity: Identity | None = request.state.identity
    if identity is None:
        return error_page(request, "Sign in required", SIGN_IN, 401)
    admin = changes.settings.admin_group
    try:
        comment = resolve_comment(session, change, comment_id, identity, admin)
    except CommentError as exc:
        session.rollback()
        return error_page(request, "Not resolved", str(exc), exc.status)
    if not wants_fragment(request):
        return RedirectResponse(f"/reviews/{change.id}#{comment.anchor}", status_code=303)
    view = _view(session, changes, templates, change)
    outdated = comment.id in view.outdated
    context = _context(request, change, view, comment=comment, outdated=outdated)
    return page(request, "review/comment.html", context, fragment="article")
