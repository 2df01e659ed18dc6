"""Revising a change sent back for changes: the create form again, pre-filled, name fixed.

The revision is rendered by the same job as a new scaffold and pushed as one more commit on
the change's branch; the checks run again and the change returns to review.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.changes.models import Change
from portal.changes.store import audit_of, get_change
from portal.db import SessionDep
from portal.deps import app_state
from portal.review.decide import DecisionError
from portal.scaffold.form import FormValues, answers_from_form, form_context, raw_from_answers
from portal.scaffold.registry.offered import OfferedTemplate
from portal.scaffold.request import ScaffoldRequestError, revise_scaffold
from portal.scaffold.runtime import ScaffoldDep, ScaffoldRuntime
from portal.ui.render import error_page, page

router = APIRouter(prefix="/reviews", include_in_schema=False)


def revise_link(change: Change) -> str:
    """Return the path of the revise form of a scaffold change (offered to the review pages)."""
    return f"/reviews/{change.id}/revise"


def _load(
    runtime: ScaffoldRuntime, session: Session, change_id: str
) -> tuple[Change, OfferedTemplate]:
    change = get_change(session, change_id)
    if change is None:
        raise HTTPException(404, f"There is no change {change_id}.")
    template = runtime.context.registry.get(change.template)
    if template is None:
        raise HTTPException(404, f"The template {change.template!r} is no longer offered.")
    return change, template


def _last_request(session: Session, change: Change) -> str:
    comments = [e.detail for e in audit_of(session, change.id) if e.action == "changes_requested"]
    return comments[-1] if comments else ""


def _form(
    request: Request,
    session: Session,
    change: Change,
    template: OfferedTemplate,
    raw: dict[str, Any],
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    environments = app_state(request.app, "scaffold", ScaffoldRuntime).environments()
    context = form_context(
        request, session, template, raw, errors, revising=change, environments=environments
    )
    context["revision_comment"] = _last_request(session, change)
    return context


@router.get("/{change_id}/revise", response_class=HTMLResponse)
def revise_form(
    request: Request, session: SessionDep, scaffold: ScaffoldDep, change_id: str
) -> Response:
    """Show the form with the change's current answers."""
    change, template = _load(scaffold, session, change_id)
    raw = raw_from_answers(template, change.answers)
    return page(request, "scaffold/form.html", _form(request, session, change, template, raw))


@router.post("/{change_id}/revise/form", response_class=HTMLResponse)
def refresh_revise_form(
    request: Request, session: SessionDep, scaffold: ScaffoldDep, change_id: str, values: FormValues
) -> Response:
    """Re-evaluate the form for the current answers (htmx swaps the ``form`` block)."""
    change, template = _load(scaffold, session, change_id)
    context = _form(request, session, change, template, answers_from_form(template, values))
    return page(request, "scaffold/form.html", context, fragment="form")


@router.post("/{change_id}/revise", response_class=HTMLResponse)
def submit_revision(
    request: Request, session: SessionDep, scaffold: ScaffoldDep, change_id: str, values: FormValues
) -> Response:
    """Queue the revision: 303 to the change, or the form again with field errors."""
    change, template = _load(scaffold, session, change_id)
    identity: Identity | None = request.state.identity
    if identity is None:
        message = "Sign in to revise a change: the revision is recorded in your name."
        return error_page(request, "Sign in required", message, 401)
    raw = answers_from_form(template, values)
    admin_group = scaffold.context.settings.admin_group
    try:
        revise_scaffold(
            session,
            scaffold.context.registry,
            change,
            raw,
            identity,
            admin_group,
            environments=scaffold.environments(),
        )
    except DecisionError as exc:
        session.rollback()
        return error_page(request, "This change cannot be revised", exc.message, exc.status)
    except ScaffoldRequestError as exc:
        session.rollback()
        context = _form(request, session, change, template, raw, dict(exc.errors))
        return page(request, "scaffold/form.html", context, status_code=400)
    scaffold.wake()
    return RedirectResponse(f"/reviews/{change.id}", status_code=303)
