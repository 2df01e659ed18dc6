"""Create pages: the template list, the form built from a template's questions, submission.

The form is plain HTML that works without JavaScript; htmx re-renders it when an answer
other questions depend on changes (the form's model is :mod:`portal.scaffold.form`), and
checks each field as it is typed (:mod:`portal.scaffold.live_check`). Sign-in comes first:
someone not signed in is told so instead of being shown questions they cannot submit.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.auth.identity import Identity
from portal.changes.gitops import gitops_unavailable
from portal.db import SessionDep
from portal.deps import ChangesDep
from portal.integrations.git import GitError
from portal.scaffold.form import FormValues, answers_from_form, form_context
from portal.scaffold.live_check import UnknownFieldError, check_field
from portal.scaffold.registry.manifest import TemplateError
from portal.scaffold.registry.offered import OfferedTemplate
from portal.scaffold.request import ScaffoldRequestError, request_scaffold
from portal.scaffold.runtime import ScaffoldDep, ScaffoldRuntime
from portal.ui.render import error_page, page

router = APIRouter(prefix="/create", include_in_schema=False)
SIGN_IN_FIRST = "Sign in to create a service: the change is requested in your name."


def _template(runtime: ScaffoldRuntime, name: str) -> OfferedTemplate:
    template = runtime.context.registry.get(name)
    if template is None:
        raise HTTPException(404, f"There is no template named {name!r}.")
    return template


def list_context(
    request: Request, runtime: ScaffoldRuntime, register: dict[str, str] | None = None
) -> dict[str, Any]:
    """Return what the template list shows; ``register`` re-fills the registration form."""
    registry = runtime.context.registry
    try:
        templates, problem = registry.all(), None
    except TemplateError as exc:  # one broken template must not hide the reason
        templates, problem = [], str(exc)
    identity: Identity | None = request.state.identity
    return {
        "active": "create",
        "templates": templates,
        "problem": problem,
        "unavailable": sorted(registry.problems.items()),
        "can_register": identity is not None
        and identity.is_admin(runtime.context.settings.admin_group),
        "register": register or {},
    }


@router.get("", response_class=HTMLResponse)
def template_list(request: Request, scaffold: ScaffoldDep) -> Response:
    """List the templates a service can be created from."""
    return page(request, "scaffold/list.html", list_context(request, scaffold))


@router.get("/{template_name}", response_class=HTMLResponse)
def template_form(
    request: Request,
    session: SessionDep,
    scaffold: ScaffoldDep,
    changes: ChangesDep,
    template_name: str,
) -> Response:
    """Show the form of one template, pre-filled with its defaults (or first, sign-in)."""
    template = _template(scaffold, template_name)
    environments = scaffold.environments(changes.request_gitops)
    context = form_context(request, session, template, {}, environments=environments)
    return page(request, "scaffold/form.html", context)


@router.post("/{template_name}/form", response_class=HTMLResponse)
def refresh_form(
    request: Request,
    session: SessionDep,
    scaffold: ScaffoldDep,
    changes: ChangesDep,
    template_name: str,
    values: FormValues,
) -> Response:
    """Re-evaluate the form for the current answers (htmx swaps the ``form`` block)."""
    template = _template(scaffold, template_name)
    if request.state.identity is None:
        return error_page(request, "Sign in required", SIGN_IN_FIRST, 401)
    raw, environments = (
        answers_from_form(template, values),
        scaffold.environments(changes.request_gitops),
    )
    context = form_context(request, session, template, raw, environments=environments)
    return page(request, "scaffold/form.html", context, fragment="form")


@router.post("/{template_name}/validate", response_class=HTMLResponse)
def validate_field(
    request: Request,
    session: SessionDep,
    scaffold: ScaffoldDep,
    changes: ChangesDep,
    template_name: str,
    values: FormValues,
    field: str = "",
) -> Response:
    """Check one field of the posted form as a submission would: its status fragment only.

    200 whether the field is valid or not (htmx swaps the fragment under the field); 422
    for a field the form does not have; 401 for someone not signed in.
    """
    template = _template(scaffold, template_name)
    if request.state.identity is None:
        return error_page(request, "Sign in required", SIGN_IN_FIRST, 401)
    raw = answers_from_form(template, values)
    registry = scaffold.context.registry
    try:
        status = check_field(session, registry, template, raw, field, changes.request_gitops)
    except UnknownFieldError as exc:
        return error_page(request, "Unknown field", str(exc), 422)
    return page(request, "scaffold/field_status.html", {"status": status})


@router.post("/{template_name}", response_class=HTMLResponse)
def submit_form(
    request: Request,
    session: SessionDep,
    scaffold: ScaffoldDep,
    changes: ChangesDep,
    template_name: str,
    values: FormValues,
) -> Response:
    """Request the scaffold: 303 to the new change, or the form again with field errors."""
    template = _template(scaffold, template_name)
    identity: Identity | None = request.state.identity
    if identity is None:
        return error_page(request, "Sign in required", SIGN_IN_FIRST, 401)
    raw = answers_from_form(template, values)
    environments = scaffold.environments(changes.request_gitops)
    try:
        change = request_scaffold(
            session,
            scaffold.context.registry,
            changes.request_gitops(),
            template.info.name,
            raw,
            identity.user_ref,
            environments=environments,
        )
    except GitError as exc:  # the remote is down or hung: the answers stay in the form
        errors = {"GitOps repository": gitops_unavailable(exc)}
        context = form_context(request, session, template, raw, errors, environments=environments)
        return page(request, "scaffold/form.html", context, status_code=503)
    except ScaffoldRequestError as exc:
        errors = dict(exc.errors)
        context = form_context(request, session, template, raw, errors, environments=environments)
        return page(request, "scaffold/form.html", context, status_code=400)
    scaffold.wake()
    return RedirectResponse(f"/reviews/{change.id}", status_code=303)
