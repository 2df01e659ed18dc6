"""Adding to the template registry from the Create page: the "register a template from git" form.

Only platform admins may register templates.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.auth.identity import Identity
from portal.db import SessionDep
from portal.scaffold.registry.manifest import TemplateError
from portal.scaffold.routes import list_context
from portal.scaffold.runtime import ScaffoldDep
from portal.ui.render import error_page, page

router = APIRouter(prefix="/create", include_in_schema=False)

Text = Annotated[str, Form()]


@router.post("/-/register", response_class=HTMLResponse)
def register_template(
    request: Request,
    session: SessionDep,
    runtime: ScaffoldDep,
    url: Text = "",
    ref: Text = "",
    name: Text = "",
) -> Response:
    """Register a Copier template by git URL and ref: 303 to its form, or the errors."""
    admin_group = runtime.context.settings.admin_group
    identity: Identity | None = request.state.identity
    if identity is None or not identity.is_admin(admin_group):
        message = f"Only members of {admin_group} can register templates."
        return error_page(request, "Not allowed", message, 403)
    registry = runtime.context.registry
    try:
        template = registry.register(
            session, url.strip(), ref.strip(), name.strip() or None, identity.user_ref
        )
    except TemplateError as exc:
        form = {"url": url, "ref": ref, "name": name, "error": str(exc)}
        context = list_context(request, runtime, register=form)
        return page(request, "scaffold/list.html", context, status_code=400)
    return RedirectResponse(f"/create/{template.info.name}", status_code=303)
