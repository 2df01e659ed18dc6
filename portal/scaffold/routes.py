"""Create pages: the template list, the form built from a template's questions, submission.

The form is plain HTML that works without JavaScript; htmx re-renders it when an answer
other questions depend on changes (the form's model is :mod:`portal.scaffold.form`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.auth.identity import Identity
from portal.db import SessionDep
from portal.integrations.git import GitError
from portal.scaffold.form import FormValues, answers_from_form, form_context
from portal.scaffold.registry import OfferedTemplate
from portal.scaffold.request import ScaffoldRequestError, request_scaffold
from portal.scaffold.runtime import ScaffoldRuntime, gitops_unavailable
from portal.scaffold.templates import TemplateError
from portal.ui.render import error_page, page

router = APIRouter(prefix="/create", include_in_schema=False)


def _template(request: Request, name: str) -> OfferedTemplate:
    runtime: ScaffoldRuntime = request.app.state.scaffold
    template = runtime.context.registry.get(name)
    if template is None:
        raise HTTPException(404, f"There is no template named {name!r}.")
    return template


def list_context(request: Request, register: dict[str, str] | None = None) -> dict[str, Any]:
    """Return what the template list shows; ``register`` re-fills the registration form."""
    runtime: ScaffoldRuntime = request.app.state.scaffold
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
def template_list(request: Request) -> Response:
    """List the templates a service can be created from."""
    return page(request, "scaffold/list.html", list_context(request))


@router.get("/{template_name}", response_class=HTMLResponse)
def template_form(request: Request, session: SessionDep, template_name: str) -> Response:
    """Show the form of one template, pre-filled with its defaults."""
    template = _template(request, template_name)
    return page(request, "scaffold/form.html", form_context(request, session, template, {}))


@router.post("/{template_name}/form", response_class=HTMLResponse)
def refresh_form(
    request: Request, session: SessionDep, template_name: str, values: FormValues
) -> Response:
    """Re-evaluate the form for the current answers (htmx swaps the ``form`` block)."""
    template = _template(request, template_name)
    context = form_context(request, session, template, answers_from_form(template, values))
    return page(request, "scaffold/form.html", context, fragment="form")


@router.post("/{template_name}", response_class=HTMLResponse)
def submit_form(
    request: Request, session: SessionDep, template_name: str, values: FormValues
) -> Response:
    """Request the scaffold: 303 to the new change, or the form again with field errors."""
    template = _template(request, template_name)
    identity: Identity | None = request.state.identity
    if identity is None:
        message = "Sign in to create a service: the change is requested in your name."
        return error_page(request, "Sign in required", message, 401)
    raw = answers_from_form(template, values)
    runtime: ScaffoldRuntime = request.app.state.scaffold
    try:
        change = request_scaffold(
            session,
            runtime.context.registry,
            runtime.request_gitops(),
            template.info.name,
            raw,
            identity.user_ref,
        )
    except GitError as exc:  # the remote is down or hung: the answers stay in the form
        errors = {"GitOps repository": gitops_unavailable(exc)}
        context = form_context(request, session, template, raw, errors)
        return page(request, "scaffold/form.html", context, status_code=503)
    except ScaffoldRequestError as exc:
        errors = dict(exc.errors)
        if "owner" in errors and not raw.get("owner"):  # the parser's message names no field
            errors["owner"] = "choose the team that owns the service"
        context = form_context(request, session, template, raw, errors)
        return page(request, "scaffold/form.html", context, status_code=400)
    runtime.wake()
    return RedirectResponse(f"/reviews/{change.id}", status_code=303)
