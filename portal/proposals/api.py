"""JSON API to propose edits to an existing service: ``POST /api/changes``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from portal.api_errors import UNSAFE, error_responses, refused_answer
from portal.auth.identity import Identity
from portal.changes.edits import Edit
from portal.changes.gitops import gitops_unavailable
from portal.changes.yaml_objects import Target
from portal.db import SessionDep
from portal.deps import ChangesDep
from portal.integrations.git import GitError
from portal.proposals.evidence import EvidenceItem
from portal.proposals.propose import Proposal, ProposalRefusedError, propose

router = APIRouter(prefix="/api/changes", tags=["changes"])

_EXAMPLE_PATCH = {
    "path": "services/air-quality/deploy/overlays/prod/kustomization.yaml",
    "patch": {
        "type": "strategic-merge",
        "target": {"kind": "Kustomization"},
        "patch": {"images": [{"name": "ghcr.io/example/air-quality", "newTag": "1.5.0"}]},
    },
}


class TargetIn(BaseModel):
    """The object of the file a patch edits; without a name the kind must be unique."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=100, examples=["Deployment"])
    name: str | None = Field(default=None, max_length=253, examples=["air-quality"])
    namespace: str | None = Field(default=None, max_length=63)


class PatchIn(BaseModel):
    """A strategic-merge patch (a mapping) or a JSON 6902 patch (a list of operations)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["strategic-merge", "json6902"]
    target: TargetIn
    patch: dict[str, Any] | list[dict[str, Any]]


class EditIn(BaseModel):
    """One edit: ``content`` replaces or creates the whole file, or ``patch`` edits one object."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(max_length=1000, examples=[_EXAMPLE_PATCH["path"]])
    content: str | None = None
    patch: PatchIn | None = None


class EvidenceIn(BaseModel):
    """Why the change is right: a label and exactly one of a link, a text or a figure."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(max_length=1000, examples=["p95 latency, last 7 days"])
    url: str | None = Field(default=None, examples=["https://grafana.example.com/d/abc"])
    text: str | None = None
    figure: str | None = Field(default=None, description="data:image/png;base64,... (≤ 512 KiB)")


class ChangeIn(BaseModel):
    """A proposed change to the service's own files."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(max_length=63, examples=["air-quality"])
    title: str = Field(max_length=1000, examples=["Promote air-quality 1.5.0 to prod"])
    reason: str = Field(max_length=100_000, examples=["1.5.0 ran a week in staging within SLO"])
    evidence: list[EvidenceIn] = Field(default_factory=list, max_length=100)
    edits: list[EditIn] = Field(max_length=200, examples=[[_EXAMPLE_PATCH]])


class Proposed(BaseModel):
    """The change created; its checks run next (poll ``url``)."""

    id: str
    status: str
    branch: str
    commit: str | None
    url: str


def _edits(body: ChangeIn) -> list[Edit]:
    errors: dict[str, str] = {}
    edits: list[Edit] = []
    for index, edit in enumerate(body.edits):
        if (edit.content is None) == (edit.patch is None):
            errors[f"edits[{index}]"] = "give exactly one of content or patch"
        elif edit.patch is not None:
            target = Target(
                edit.patch.target.kind, edit.patch.target.name, edit.patch.target.namespace
            )
            edits.append(Edit(edit.path, None, edit.patch.type, target, edit.patch.patch))
        else:
            edits.append(Edit(edit.path, edit.content))
    if errors:
        raise ProposalRefusedError("the edits were refused", errors=errors)
    return edits


@router.post(
    "",
    status_code=202,
    response_model=Proposed,
    responses=error_responses(
        401,
        403,
        422,
        503,
        *UNSAFE,
        described={
            401: "Not signed in, or a bad, expired or revoked API token",
            403: "Not allowed to propose changes to this service (or a token out of its scope)",
        },
    ),
)
def api_propose(body: ChangeIn, request: Request, session: SessionDep, changes: ChangesDep) -> Any:
    """Propose edits to an existing service; they become a change on ``change/<service>/<id>``.

    Authenticate as a person (session or proxy headers) or with an API token
    (``Authorization: Bearer pst_...``) scoped to the service. Refused edits get 422 with
    the field named (``edits[0].path``); nothing is written.
    """
    identity: Identity | None = request.state.identity
    if identity is None:
        raise HTTPException(
            401,
            "sign in, send the proxy's identity headers, or an API token "
            "(Authorization: Bearer pst_...) to propose a change",
        )
    evidence = [EvidenceItem(e.label, e.url, e.text, e.figure) for e in body.evidence]
    try:
        proposal = Proposal(body.service, body.title, body.reason, _edits(body), evidence)
        change = propose(session, changes.request_gitops(), changes.settings, identity, proposal)
    except ProposalRefusedError as exc:
        return refused_answer(exc)
    except GitError as exc:  # the GitOps remote did not answer or refused; nothing stored
        raise HTTPException(503, gitops_unavailable(exc)) from exc
    return Proposed(
        id=change.id,
        status=change.status.value,
        branch=change.branch,
        commit=change.commit_sha,
        url=f"/api/changes/{change.id}",
    )
