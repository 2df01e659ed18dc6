"""JSON API to request a scaffold."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from portal.api_errors import UNSAFE, error_responses
from portal.changes.gitops import gitops_unavailable
from portal.changes.store import get_change
from portal.db import SessionDep
from portal.deps import ChangesDep, SettingsDep
from portal.integrations.git import GitError
from portal.review.decide import DecisionError
from portal.scaffold.registry.from_git import unregister
from portal.scaffold.registry.manifest import TemplateError
from portal.scaffold.registry.offered import OfferedTemplate
from portal.scaffold.request import ScaffoldRequestError, request_scaffold, revise_scaffold
from portal.scaffold.runtime import ScaffoldDep

router = APIRouter(prefix="/api", tags=["scaffold"])

# Accepted on a fresh portal: a bundled template, a Group of the repository's own catalog.
EXAMPLE_ANSWERS = {"name": "payments", "owner": "platform-team", "description": "Takes payments"}


class ScaffoldIn(BaseModel):
    """A scaffold request: the template and the answers (``name`` and ``owner`` required)."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(examples=["fastapi-service"])
    answers: dict[str, Any] = Field(examples=[EXAMPLE_ANSWERS])


class Accepted(BaseModel):
    """The change created for a request; poll ``url`` for progress."""

    id: str
    status: str
    url: str


@router.post(
    "/scaffold",
    status_code=202,
    response_model=Accepted,
    responses=error_responses(401, 422, 503, *UNSAFE),
)
def api_scaffold(
    body: ScaffoldIn,
    request: Request,
    session: SessionDep,
    scaffold: ScaffoldDep,
    changes: ChangesDep,
) -> Any:
    """Validate the answers, create the change and queue rendering; nothing is written on error."""
    identity = request.state.identity
    if identity is None:
        raise HTTPException(401, "sign in (or send the proxy's identity headers) to scaffold")
    try:
        change = request_scaffold(
            session,
            scaffold.context.registry,
            changes.request_gitops(),
            body.template,
            body.answers,
            identity.user_ref,
            environments=scaffold.environments(changes.request_gitops),
        )
    except ScaffoldRequestError as exc:
        return JSONResponse(
            {"detail": "the request was refused", "errors": exc.errors}, status_code=422
        )
    except GitError as exc:  # the name cannot be checked against the GitOps repository
        raise HTTPException(503, gitops_unavailable(exc)) from exc
    scaffold.wake()
    return Accepted(id=change.id, status=change.status.value, url=f"/api/changes/{change.id}")


class ReviseIn(BaseModel):
    """New answers for a change sent back for changes (``name`` must stay the same)."""

    model_config = ConfigDict(extra="forbid")

    answers: dict[str, Any] = Field(examples=[EXAMPLE_ANSWERS])


@router.post(
    "/changes/{change_id}/revise",
    status_code=202,
    response_model=Accepted,
    responses=error_responses(
        401,
        413,
        422,
        described={
            403: "Not the author nor of the owning team, or a form without the CSRF token",
            404: "No such change",
            409: "The change is not waiting for a revision",
        },
    ),
)
def api_revise(
    change_id: str, body: ReviseIn, request: Request, session: SessionDep, scaffold: ScaffoldDep
) -> Any:
    """Store new answers and queue the next revision on the same branch; checks run again."""
    identity = request.state.identity
    if identity is None:
        raise HTTPException(401, "sign in (or send the proxy's identity headers) to revise")
    change = get_change(session, change_id)
    if change is None:
        raise HTTPException(404, f"no change {change_id}")
    context = scaffold.context
    try:
        revise_scaffold(
            session,
            context.registry,
            change,
            body.answers,
            identity,
            context.settings.admin_group,
            environments=scaffold.environments(),
        )
    except DecisionError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    except ScaffoldRequestError as exc:
        return JSONResponse(
            {"detail": "the revision was refused", "errors": exc.errors}, status_code=422
        )
    scaffold.wake()
    return Accepted(id=change.id, status=change.status.value, url=f"/api/changes/{change.id}")


class TemplateOut(BaseModel):
    """One template the portal offers."""

    name: str
    title: str
    version: str
    description: str
    origin: str = Field(description='"bundled", or "<git URL> at <ref>" for a registered one')
    commit: str = Field(description="the tag or commit rendered")


class RegisterIn(BaseModel):
    """A Copier template to register: a git URL without credentials and a ref."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(examples=["https://git.example.com/platform/templates/worker.git"])
    ref: str = Field(examples=["v1.0.0"])
    name: str | None = Field(default=None, description="default: the URL's last part")


def template_out(template: OfferedTemplate) -> TemplateOut:
    """Return the API view of an offered template."""
    info = template.info
    return TemplateOut(
        name=info.name,
        title=info.title,
        version=info.version,
        description=info.description,
        origin=template.origin,
        commit=template.vcs_ref,
    )


_ADMIN_ONLY = {403: "Not a platform admin, or a form without the CSRF token"}


@router.get("/templates", response_model=list[TemplateOut])
def api_templates(scaffold: ScaffoldDep) -> list[TemplateOut]:
    """List the templates a service can be created from."""
    return [template_out(template) for template in scaffold.context.registry.all()]


def _admin(request: Request, admin_group: str) -> str:
    identity = request.state.identity
    if identity is None:
        raise HTTPException(401, "sign in (or send the proxy's identity headers)")
    if not identity.is_admin(admin_group):
        raise HTTPException(403, f"only members of {admin_group} can register templates")
    user_ref: str = identity.user_ref
    return user_ref


@router.post(
    "/templates",
    status_code=201,
    response_model=TemplateOut,
    responses=error_responses(401, 413, 422, described=_ADMIN_ONLY),
)
def api_register_template(
    body: RegisterIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    scaffold: ScaffoldDep,
) -> Any:
    """Register (or re-pin) a Copier template by git URL and ref; platform admins only."""
    who = _admin(request, settings.admin_group)
    try:
        template = scaffold.context.registry.register(session, body.url, body.ref, body.name, who)
    except TemplateError as exc:
        return JSONResponse(
            {"detail": "the template was refused", "errors": {"url": str(exc)}}, status_code=422
        )
    return template_out(template)


@router.delete(
    "/templates/{name}",
    status_code=204,
    responses=error_responses(
        401, 413, 422, described={**_ADMIN_ONLY, 404: "No such registered template"}
    ),
)
def api_unregister_template(
    name: str, request: Request, session: SessionDep, settings: SettingsDep
) -> None:
    """Stop offering a registered template (bundled ones live in templates/)."""
    _admin(request, settings.admin_group)
    if not unregister(session, name):
        raise HTTPException(404, f"no registered template {name}")
