"""JSON API of changes: status and checks, approve, reject."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from portal.auth.identity import Identity
from portal.db import SessionDep
from portal.integrations.git import GitError
from portal.review.decide import DecisionError, approve, reject, request_changes
from portal.review.models import Change
from portal.review.store import checks_of, get_change
from portal.scaffold.runtime import ScaffoldRuntime

router = APIRouter(prefix="/api/changes", tags=["reviews"])


class CheckOut(BaseModel):
    """One automatic check."""

    name: str
    status: str
    summary: str
    findings: list[dict[str, Any]]


class ChangeOut(BaseModel):
    """A change as the API reports it."""

    id: str
    status: str
    branch: str
    commit: str | None
    merge_commit: str | None
    service: str
    template: str
    requester: str
    revision: int
    approved_by: str | None
    error: str | None
    steps: list[dict[str, Any]]
    checks: list[CheckOut]


class DecisionIn(BaseModel):
    """An optional comment with a decision."""

    comment: str = ""


def change_out(session: SessionDep, change: Change) -> ChangeOut:
    """Return the API view of a change with its checks."""
    return ChangeOut(
        id=change.id,
        status=change.status.value,
        branch=change.branch,
        commit=change.commit_sha,
        merge_commit=change.merge_sha,
        service=change.service,
        template=change.template,
        requester=change.requester_ref,
        revision=change.revision,
        approved_by=change.approved_by,
        error=change.error,
        steps=change.steps,
        checks=[
            CheckOut(name=c.name, status=c.status, summary=c.summary, findings=c.findings)
            for c in checks_of(session, change.id)
        ],
    )


def _load(session: SessionDep, change_id: str) -> Change:
    change = get_change(session, change_id)
    if change is None:
        raise HTTPException(404, f"no change {change_id}")
    return change


def _identity(request: Request) -> Identity:
    identity: Identity | None = request.state.identity
    if identity is None:
        raise HTTPException(401, "sign in (or send the proxy's identity headers) to decide")
    return identity


_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such change"},
    401: {"description": "Not signed in"},
    403: {"description": "Not allowed to decide on this change"},
    409: {"description": "The change is not in a state that allows this"},
}


@router.get("/{change_id}", response_model=ChangeOut, responses={404: _RESPONSES[404]})
def api_change(change_id: str, session: SessionDep) -> ChangeOut:
    """Return a change's status, branch, commit and checks."""
    return change_out(session, _load(session, change_id))


@router.post("/{change_id}/approve", response_model=ChangeOut, responses=_RESPONSES)
def api_approve(change_id: str, request: Request, session: SessionDep) -> ChangeOut:
    """Approve: merge into main (once, however often it is called) and register the entity."""
    change, identity = _load(session, change_id), _identity(request)
    runtime: ScaffoldRuntime = request.app.state.scaffold
    try:
        approve(session, change, identity, runtime.context.gitops(), runtime.context.settings)
    except DecisionError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    except GitError as exc:  # a merge conflict or a refused push: the change stays as it was
        raise HTTPException(409, f"the GitOps repository refused it: {exc}") from exc
    return change_out(session, change)


@router.post("/{change_id}/reject", response_model=ChangeOut, responses=_RESPONSES)
def api_reject(
    change_id: str, request: Request, session: SessionDep, body: DecisionIn | None = None
) -> ChangeOut:
    """Reject: close the change and delete its branch."""
    change, identity = _load(session, change_id), _identity(request)
    runtime: ScaffoldRuntime = request.app.state.scaffold
    comment = body.comment if body else ""
    try:
        reject(
            session, change, identity, runtime.context.gitops(), runtime.context.settings, comment
        )
    except DecisionError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    except GitError as exc:  # a merge conflict or a refused push: the change stays as it was
        raise HTTPException(409, f"the GitOps repository refused it: {exc}") from exc
    return change_out(session, change)


@router.post("/{change_id}/request-changes", response_model=ChangeOut, responses=_RESPONSES)
def api_request_changes(
    change_id: str, request: Request, session: SessionDep, body: DecisionIn
) -> ChangeOut:
    """Send the change back to its author with a comment (required); the branch stays."""
    change, identity = _load(session, change_id), _identity(request)
    runtime: ScaffoldRuntime = request.app.state.scaffold
    try:
        request_changes(session, change, identity, runtime.context.settings, body.comment)
    except DecisionError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    return change_out(session, change)
