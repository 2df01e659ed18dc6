"""JSON API to request a scaffold."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from portal.db import SessionDep
from portal.review.decide import DecisionError
from portal.review.store import get_change
from portal.scaffold.request import ScaffoldRequestError, request_scaffold, revise_scaffold
from portal.scaffold.runtime import ScaffoldRuntime

router = APIRouter(prefix="/api", tags=["scaffold"])


class ScaffoldIn(BaseModel):
    """A scaffold request: the template and the answers (``name`` and ``owner`` required)."""

    template: str = Field(examples=["fastapi-service"])
    answers: dict[str, Any] = Field(examples=[{"name": "payments", "owner": "team-a"}])


class Accepted(BaseModel):
    """The change created for a request; poll ``url`` for progress."""

    id: str
    status: str
    url: str


class FieldErrors(BaseModel):
    """Why a request was refused, one message per field."""

    detail: str
    errors: dict[str, str]


@router.post(
    "/scaffold",
    status_code=202,
    response_model=Accepted,
    responses={422: {"model": FieldErrors}, 401: {"description": "Not signed in"}},
)
def api_scaffold(body: ScaffoldIn, request: Request, session: SessionDep) -> Any:
    """Validate the answers, create the change and queue rendering; nothing is written on error."""
    identity = request.state.identity
    if identity is None:
        raise HTTPException(401, "sign in (or send the proxy's identity headers) to scaffold")
    runtime: ScaffoldRuntime = request.app.state.scaffold
    context = runtime.context
    try:
        change = request_scaffold(
            session,
            context.registry,
            context.gitops(),
            body.template,
            body.answers,
            identity.user_ref,
        )
    except ScaffoldRequestError as exc:
        return JSONResponse(
            {"detail": "the request was refused", "errors": exc.errors}, status_code=422
        )
    runtime.wake()
    return Accepted(id=change.id, status=change.status.value, url=f"/api/changes/{change.id}")


class ReviseIn(BaseModel):
    """New answers for a change sent back for changes (``name`` must stay the same)."""

    answers: dict[str, Any] = Field(examples=[{"name": "payments", "owner": "team-a"}])


@router.post(
    "/changes/{change_id}/revise",
    status_code=202,
    response_model=Accepted,
    responses={
        422: {"model": FieldErrors},
        401: {"description": "Not signed in"},
        403: {"description": "Not the author nor of the owning team"},
        404: {"description": "No such change"},
        409: {"description": "The change is not waiting for a revision"},
    },
)
def api_revise(change_id: str, body: ReviseIn, request: Request, session: SessionDep) -> Any:
    """Store new answers and queue the next revision on the same branch; checks run again."""
    identity = request.state.identity
    if identity is None:
        raise HTTPException(401, "sign in (or send the proxy's identity headers) to revise")
    change = get_change(session, change_id)
    if change is None:
        raise HTTPException(404, f"no change {change_id}")
    runtime: ScaffoldRuntime = request.app.state.scaffold
    context = runtime.context
    try:
        revise_scaffold(
            session,
            context.registry,
            change,
            body.answers,
            identity,
            context.settings.admin_group,
        )
    except DecisionError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    except ScaffoldRequestError as exc:
        return JSONResponse(
            {"detail": "the revision was refused", "errors": exc.errors}, status_code=422
        )
    runtime.wake()
    return Accepted(id=change.id, status=change.status.value, url=f"/api/changes/{change.id}")
