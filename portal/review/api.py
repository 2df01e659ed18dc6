"""JSON API of changes: status and checks, approve (over failing checks: admins), reject."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from portal.api_errors import FieldErrors, Problem, error_responses
from portal.auth.identity import Identity
from portal.changes.gitops import gitops_unavailable
from portal.changes.models import Change, ChangeStatus
from portal.changes.store import checks_of, get_change
from portal.db import SessionDep
from portal.deps import ChangesDep, SettingsDep
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsUnavailableError
from portal.review.decide import DecisionError, approve, reject, request_changes
from portal.review.gate import REASON_MAX_LENGTH, REASON_MIN_LENGTH, Override

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
    # A merge a platform admin approved over failed checks: why, and which checks.
    override_reason: str | None = None
    override_checks: list[str] = []
    # "scaffold", or "edit" (POST /api/changes): who or what proposed it, why, the evidence.
    kind: str = "scaffold"
    proposed_by: str | None = None
    reason: str | None = None
    evidence: list[dict[str, Any]] = []
    error: str | None
    steps: list[dict[str, Any]]
    checks: list[CheckOut]


class DecisionIn(BaseModel):
    """An optional comment with a decision."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", examples=["Please add an SLO for the checkout path."])


class ApproveIn(BaseModel):
    """An approval; a platform admin may approve over failed checks with a written reason.

    ``override_checks`` names the failed checks the reason was written for, as a refusal
    (409) lists them in ``blocking_checks``: when the checks differ by the time the
    approval runs, it is refused rather than stretched over checks nobody read.
    """

    model_config = ConfigDict(extra="forbid")

    override_reason: str | None = Field(
        default=None,
        description=(
            f"Why the change may merge although checks failed ({REASON_MIN_LENGTH} to "
            f"{REASON_MAX_LENGTH:,} characters); platform admins only"
        ),
        examples=["The checkov finding is a false positive on this base image; ticket OPS-42."],
    )
    override_checks: list[str] | None = Field(
        default=None,
        description="The failed checks the reason goes over; required with a reason",
        examples=[["checkov"]],
    )


class ApprovalRefused(Problem):
    """Why an approval was refused, with the checks that stopped it."""

    blocking_checks: list[str] = Field(default_factory=list)  # failed or could not run
    unfinished_checks: list[str] = Field(default_factory=list)  # not finished yet


def refused(exc: DecisionError) -> JSONResponse:
    """Answer a refused decision: field errors (422), or the reason with the checks."""
    body: BaseModel
    if exc.status == 422:
        errors = {exc.field or "request": exc.message}
        body = FieldErrors(detail="the decision was refused", errors=errors)
    elif exc.blocking or exc.unfinished:
        blocking, unfinished = list(exc.blocking), list(exc.unfinished)
        body = ApprovalRefused(
            detail=exc.message, blocking_checks=blocking, unfinished_checks=unfinished
        )
    else:
        body = Problem(detail=exc.message)
    return JSONResponse(body.model_dump(), status_code=exc.status)


def change_out(session: SessionDep, change: Change) -> ChangeOut:
    """Return the API view of a change with its checks."""
    merged = change.status is ChangeStatus.MERGED
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
        override_reason=change.override_reason if merged else None,
        override_checks=(change.override_checks or []) if merged else [],
        kind=change.kind,
        proposed_by=change.proposed_by,
        reason=change.reason,
        evidence=change.evidence or [],
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
_APPROVE_RESPONSES = {
    **_RESPONSES,
    403: {
        "model": Problem,
        "description": "Not allowed to decide, or to approve over failing checks (admins only)",
    },
    409: {
        "model": ApprovalRefused,
        "description": (
            "The change is not in a state that allows this, or checks failed, could not "
            "run or have not finished (named in blocking_checks / unfinished_checks)"
        ),
    },
}


@router.get(
    "/{change_id}",
    response_model=ChangeOut,
    responses=error_responses(422, described={404: _DECISION[404]}),
)
def api_change(change_id: str, session: SessionDep) -> ChangeOut:
    """Return a change's status, branch, commit and checks."""
    return change_out(session, _load(session, change_id))


@router.post("/{change_id}/approve", response_model=ChangeOut, responses=_APPROVE_RESPONSES)
def api_approve(
    change_id: str,
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    body: ApproveIn | None = None,
) -> Any:
    """Approve: merge into main (once, however often it is called) and register the entity.

    Failed, errored or unfinished checks refuse it (409, naming them); a platform admin
    may approve over failed ones with ``override_reason`` and ``override_checks``.
    """
    change, identity = _load(session, change_id), _identity(request)
    override = None
    if body is not None and body.override_reason is not None:
        override = Override(body.override_reason, tuple(body.override_checks or ()))
    try:
        gitops = changes.request_gitops()
        approve(session, change, identity, gitops, changes.settings, override)
    except DecisionError as exc:
        return refused(exc)
    except GitOpsUnavailableError as exc:  # nothing was recorded; the same call may be retried
        raise HTTPException(503, gitops_unavailable(exc)) from exc
    except GitError as exc:  # a merge conflict or a refused push: the change stays as it was
        raise HTTPException(409, f"the GitOps repository refused it: {exc}") from exc
    return change_out(session, change)


@router.post("/{change_id}/reject", response_model=ChangeOut, responses=_RESPONSES)
def api_reject(
    change_id: str,
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    body: DecisionIn | None = None,
) -> ChangeOut:
    """Reject: close the change and delete its branch."""
    change, identity = _load(session, change_id), _identity(request)
    comment = body.comment if body else ""
    try:
        reject(session, change, identity, changes.request_gitops(), changes.settings, comment)
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
    change_id: str, request: Request, session: SessionDep, settings: SettingsDep, body: DecisionIn
) -> Any:
    """Send the change back to its author with a comment (required); the branch stays."""
    change, identity = _load(session, change_id), _identity(request)
    try:
        request_changes(session, change, identity, settings, body.comment)
    except DecisionError as exc:
        return refused(exc)
    return change_out(session, change)
