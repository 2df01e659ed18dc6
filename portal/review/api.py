"""JSON API of changes: status and checks, approve, reject."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from portal.api_errors import error_responses
from portal.auth.identity import Identity
from portal.db import SessionDep
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsUnavailableError
from portal.review.decide import DecisionError, approve, reject, request_changes
from portal.review.models import Change
from portal.review.store import checks_of, get_change
from portal.scaffold.runtime import ScaffoldRuntime, gitops_unavailable

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

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", examples=["Please add an SLO for the checkout path."])


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


_DECISION = {
    403: "Not allowed to decide on this change, or a form without the CSRF token",
    404: "No such change",
    409: "The change is not in a state that allows this",
}
# Approving and rejecting change the GitOps repository (merge, delete the branch).
_RESPONSES = error_responses(401, 413, 422, 503, described=_DECISION)


@router.get(
    "/{change_id}",
    response_model=ChangeOut,
    responses=error_responses(422, described={404: _DECISION[404]}),
)
def api_change(change_id: str, session: SessionDep) -> ChangeOut:
    """Return a change's status, branch, commit and checks."""
    return change_out(session, _load(session, change_id))


@router.post("/{change_id}/approve", response_model=ChangeOut, responses=_RESPONSES)
def api_approve(change_id: str, request: Request, session: SessionDep) -> ChangeOut:
    """Approve: merge into main (once, however often it is called) and register the entity."""
    change, identity = _load(session, change_id), _identity(request)
    runtime: ScaffoldRuntime = request.app.state.scaffold
    try:
        approve(session, change, identity, runtime.request_gitops(), runtime.context.settings)
    except DecisionError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    except GitOpsUnavailableError as exc:  # nothing was recorded; the same call may be retried
        raise HTTPException(503, gitops_unavailable(exc)) from exc
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
            session, change, identity, runtime.request_gitops(), runtime.context.settings, comment
        )
    except DecisionError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    except GitOpsUnavailableError as exc:
        raise HTTPException(503, gitops_unavailable(exc)) from exc
    except GitError as exc:  # a merge conflict or a refused push: the change stays as it was
        raise HTTPException(409, f"the GitOps repository refused it: {exc}") from exc
    return change_out(session, change)


@router.post(
    "/{change_id}/request-changes",
    response_model=ChangeOut,
    responses=error_responses(401, 413, 422, described=_DECISION),
)
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
