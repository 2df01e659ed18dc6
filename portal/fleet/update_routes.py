"""Pages of template updates: propose for the fleet, follow a batch, resolve a conflict.

The fleet section of a template's page holds the proposal form (the version, and the
services, those behind ticked); it answers with the batch's page, which follows each
service's change while any is being rendered or checked. A conflicted update's change page
links the resolution page: each conflicting file in a text area, each ``.rej`` file to
delete once applied. Every form works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.changes.gitops import gitops_unavailable
from portal.changes.models import Change
from portal.changes.store import get_change
from portal.db import SessionDep
from portal.deps import ChangesDep, SettingsDep
from portal.fleet.batches import progress
from portal.fleet.models import UpdateBatch
from portal.fleet.propose import UpdateRefusedError, propose_updates
from portal.fleet.resolve import ResolutionRefusedError, change_conflicts, recheck, resolve
from portal.fleet.runtime import FleetDep, FleetRuntime
from portal.integrations.git import GitError
from portal.ui.render import error_page, page

router = APIRouter(include_in_schema=False)
SIGN_IN = "Sign in first: an update is proposed, and a conflict resolved, in your name."


def resolve_link(change_id: str) -> str:
    """Return the resolution page of an update change."""
    return f"/updates/changes/{change_id}/resolve"


@router.post("/templates/{name}/updates", response_class=HTMLResponse)
def propose_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fleet: FleetDep,
    changes: ChangesDep,
    name: str,
    to_ref: Annotated[str, Form()],
    services: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Propose the update the fleet section's form asks for; show its batch."""
    identity = request.state.identity
    if identity is None:
        return error_page(request, "Sign in", SIGN_IN, 401)
    template = fleet.scaffold.context.registry.get(name)
    if template is None:
        return error_page(request, "No such template", f"There is no template {name!r}.", 404)
    try:
        batch = propose_updates(
            session,
            changes.request_gitops(),
            template,
            identity,
            settings.admin_group,
            to_ref=to_ref,
            services=services or [],
        )
    except UpdateRefusedError as exc:
        problems = "; ".join(f"{field}: {why}" for field, why in exc.errors.items())
        return error_page(request, "The update was refused", problems or exc.message, exc.status)
    except GitError as exc:
        return error_page(request, "GitOps repository unavailable", gitops_unavailable(exc), 503)
    fleet.scaffold.wake()
    return RedirectResponse(f"/updates/{batch.id}", status_code=303)


@router.get("/updates/{batch_id}", response_class=HTMLResponse)
def batch_page(request: Request, session: SessionDep, batch_id: str) -> Response:
    """Show where each service of an update batch is (the table refreshes until done)."""
    batch = session.get(UpdateBatch, batch_id)
    if batch is None:
        return error_page(request, "No such batch", f"There is no update batch {batch_id}.", 404)
    context = {"active": "create", "found": progress(session, batch), "batch": batch}
    return page(request, "fleet/batch.html", context, fragment="progress")


@router.get("/updates/changes/{change_id}/resolve", response_class=HTMLResponse)
def resolve_page(
    request: Request, session: SessionDep, changes: ChangesDep, change_id: str
) -> Response:
    """Show an update's conflicting files, to be written as they should be."""
    change = get_change(session, change_id)
    if change is None:
        return error_page(request, "No such change", f"There is no change {change_id}.", 404)
    try:
        files, conflicts = change_conflicts(changes.request_gitops(), change)
    except GitError as exc:
        return error_page(request, "GitOps repository unavailable", gitops_unavailable(exc), 503)
    context = {
        "active": "reviews",
        "change": change,
        "conflicts": conflicts,
        "texts": {path: data.decode("utf-8", "replace") for path, data in files.items()},
    }
    return page(request, "fleet/resolve.html", context)


def _revised_page(
    request: Request,
    session: Session,
    fleet: FleetRuntime,
    change_id: str,
    revise: Callable[[Identity, Change], Change],
) -> Response:
    """Run a revision of an update change for the signed-in person; show the change after."""
    identity = request.state.identity
    if identity is None:
        return error_page(request, "Sign in", SIGN_IN, 401)
    change = get_change(session, change_id)
    if change is None:
        return error_page(request, "No such change", f"There is no change {change_id}.", 404)
    try:
        revise(identity, change)
    except ResolutionRefusedError as exc:
        problems = "; ".join(f"{field}: {why}" for field, why in exc.errors.items())
        return error_page(request, "Not revised", problems or exc.message, exc.status)
    except GitError as exc:
        return error_page(request, "GitOps repository unavailable", gitops_unavailable(exc), 503)
    fleet.scaffold.wake()
    return RedirectResponse(f"/reviews/{change_id}", status_code=303)


@router.post("/updates/changes/{change_id}/resolve", response_class=HTMLResponse)
async def resolve_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fleet: FleetDep,
    changes: ChangesDep,
    change_id: str,
) -> Response:
    """Commit the files the resolution form sends (``file:<path>`` fields, ``delete``)."""
    form = await request.form()
    files = {
        key.removeprefix("file:"): str(value).replace("\r\n", "\n")
        for key, value in form.multi_items()
        if key.startswith("file:")
    }
    deleted = [str(value) for value in form.getlist("delete")]
    return _revised_page(
        request,
        session,
        fleet,
        change_id,
        lambda identity, change: resolve(
            session,
            changes.request_gitops(),
            change,
            identity,
            settings.admin_group,
            settings.git_author_email,
            files=files,
            deleted=deleted,
        ),
    )


@router.post("/updates/changes/{change_id}/recheck", response_class=HTMLResponse)
def recheck_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fleet: FleetDep,
    changes: ChangesDep,
    change_id: str,
) -> Response:
    """Check an update again after a resolution was pushed to its branch."""
    repo, admins = changes.request_gitops, settings.admin_group
    return _revised_page(
        request,
        session,
        fleet,
        change_id,
        lambda identity, change: recheck(session, repo(), change, identity, admins),
    )
