"""JSON API of template updates: propose them for a fleet, and follow a batch.

``POST /api/templates/{name}/updates`` answers 202 with the batch and one change per
service (each then rendered by ``copier update`` and checked like any change);
``GET /api/updates/{batch}`` says where each service is; a conflicted update is resolved
with ``POST /api/changes/{id}/resolution``, or pushed to its branch and checked again with
``POST /api/changes/{id}/recheck``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from portal.api_errors import UNSAFE, error_responses, refused_answer
from portal.auth.identity import Identity
from portal.changes.gitops import gitops_unavailable
from portal.changes.models import Change
from portal.changes.store import get_change
from portal.db import SessionDep
from portal.deps import ChangesDep, SettingsDep
from portal.fleet.batches import progress
from portal.fleet.models import UpdateBatch
from portal.fleet.propose import UpdateRefusedError, propose_updates
from portal.fleet.resolve import ResolutionRefusedError, recheck, resolve
from portal.fleet.runtime import FleetDep, FleetRuntime
from portal.integrations.git import GitError

router = APIRouter(prefix="/api", tags=["fleet"])


class UpdateIn(BaseModel):
    """Which version to update to, which services (all when left out), answers for new questions."""

    model_config = ConfigDict(extra="forbid")

    to_ref: str = Field(min_length=1, max_length=250, examples=["v0.6.0"])
    services: list[str] | None = Field(default=None, examples=[["payments"]])
    answers: dict[str, Any] = Field(default_factory=dict)


class BatchAccepted(BaseModel):
    """The batch made; poll ``url`` for its progress."""

    batch: str
    changes: list[str]
    skipped: dict[str, str]
    url: str


class ServiceProgressOut(BaseModel):
    """Where one service of the batch is."""

    service: str
    state: str
    change: str | None
    detail: str


class BatchOut(BaseModel):
    """A batch: what it updates to, each service's state and a summary by state."""

    batch: str
    template: str
    to_ref: str
    requested_by: str
    done: bool
    summary: dict[str, int]
    services: list[ServiceProgressOut]


def signed_in(request: Request, doing: str) -> Identity:
    """Return the request's identity; 401 when nobody signed in."""
    identity: Identity | None = request.state.identity
    if identity is None:
        raise HTTPException(401, f"sign in (or send the proxy's identity headers) to {doing}")
    return identity


@router.post(
    "/templates/{name}/updates",
    status_code=202,
    response_model=BatchAccepted,
    responses=error_responses(401, 422, 503, *UNSAFE, described={404: "No such template"}),
)
def api_propose_updates(
    name: str,
    body: UpdateIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fleet: FleetDep,
    changes: ChangesDep,
) -> Any:
    """Propose updating the template's services to ``to_ref``: one change per service."""
    identity = signed_in(request, "update")
    template = fleet.scaffold.context.registry.get(name)
    if template is None:
        raise HTTPException(404, f"no template {name}")
    try:
        batch = propose_updates(
            session,
            changes.request_gitops(),
            template,
            identity,
            settings.admin_group,
            to_ref=body.to_ref,
            services=body.services,
            answers=body.answers,
        )
    except UpdateRefusedError as exc:
        return refused_answer(exc)
    except GitError as exc:
        raise HTTPException(503, gitops_unavailable(exc)) from exc
    fleet.scaffold.wake()
    return BatchAccepted(
        batch=batch.id,
        changes=list(batch.changes.values()),
        skipped=batch.skipped,
        url=f"/api/updates/{batch.id}",
    )


@router.get(
    "/updates/{batch_id}",
    response_model=BatchOut,
    responses=error_responses(422, described={404: "No such batch"}),
)
def api_batch(batch_id: str, session: SessionDep) -> BatchOut:
    """Return where each service of an update batch is."""
    batch = session.get(UpdateBatch, batch_id)
    if batch is None:
        raise HTTPException(404, f"no update batch {batch_id}")
    found = progress(session, batch)
    return BatchOut(
        batch=batch.id,
        template=batch.template,
        to_ref=batch.to_ref,
        requested_by=batch.requested_by,
        done=found.done,
        summary=found.summary,
        services=[
            ServiceProgressOut(
                service=entry.service,
                state=entry.state,
                change=entry.change_id,
                detail=entry.detail,
            )
            for entry in found.services
        ],
    )


class ResolutionIn(BaseModel):
    """The team's resolution: files of the service folder with their new text, files to delete."""

    model_config = ConfigDict(extra="forbid")

    files: dict[str, str] = Field(default_factory=dict, examples=[{"README.md": "# payments\n"}])
    deleted: list[str] = Field(default_factory=list, examples=[["README.md.rej"]])


class Revised(BaseModel):
    """The change after the resolution: checked again from now on."""

    id: str
    status: str
    revision: int
    commit: str | None
    url: str


@router.post(
    "/changes/{change_id}/resolution",
    response_model=Revised,
    responses=error_responses(
        401, 422, 503, *UNSAFE, described={404: "No such update change", 409: "Not revisable now"}
    ),
)
def api_resolve(
    change_id: str,
    body: ResolutionIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fleet: FleetDep,
    changes: ChangesDep,
) -> Any:
    """Commit the team's resolution of an update's conflicts as its next revision."""
    identity = signed_in(request, "resolve")
    change = _change(session, change_id)
    return _revised(
        fleet,
        lambda: resolve(
            session,
            changes.request_gitops(),
            change,
            identity,
            settings.admin_group,
            settings.git_author_email,
            files=body.files,
            deleted=body.deleted,
        ),
    )


def _change(session: Session, change_id: str) -> Change:
    change = get_change(session, change_id)
    if change is None:
        raise HTTPException(404, f"no change {change_id}")
    return change


def _revised(fleet: FleetRuntime, revise: Callable[[], Change]) -> Any:
    """Run a revision of an update change; answer the change, or why it was refused."""
    try:
        revised = revise()
    except ResolutionRefusedError as exc:
        return refused_answer(exc)
    except GitError as exc:
        raise HTTPException(503, gitops_unavailable(exc)) from exc
    fleet.scaffold.wake()
    return revised_out(revised)


def revised_out(revised: Change) -> Revised:
    """Return the API's view of a revised update change."""
    return Revised(
        id=revised.id,
        status=revised.status.value,
        revision=revised.revision,
        commit=revised.commit_sha,
        url=f"/api/changes/{revised.id}",
    )


@router.post(
    "/changes/{change_id}/recheck",
    response_model=Revised,
    responses=error_responses(
        401, 422, 503, *UNSAFE, described={404: "No such update change", 409: "Nothing to check"}
    ),
)
def api_recheck(
    change_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fleet: FleetDep,
    changes: ChangesDep,
) -> Any:
    """Check an update change again after a resolution was pushed to its branch."""
    identity = signed_in(request, "check it again")
    change = _change(session, change_id)
    repo = changes.request_gitops
    admins = settings.admin_group
    return _revised(fleet, lambda: recheck(session, repo(), change, identity, admins))
