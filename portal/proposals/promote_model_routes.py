"""Promote and roll back a model version: JSON API, form posts, and the SLO page's banner.

``POST /api/models/{name}/promote {version, environment}`` and
``POST /api/models/{name}/rollback {environment}`` answer 201 with the change; the Models
page's forms post to ``/models/{name}/promote`` and ``/models/{name}/rollback`` and are
sent to the change's review page (303), or shown an error page saying why. Both go
through :mod:`portal.proposals.promote_model` and
:func:`portal.proposals.propose.propose` as the signed-in person, with the rules of every
proposal: CSRF tokens on forms (JSON bodies are exempt), members of the owning team or
platform admins only.

A rollback posted from a banner names the SLO that pages (``slo``): the alert, burn rates
and promotion are read again here (posted figures are never trusted) and added to the
change's evidence. ``GET /slos/{sloth_id}/rollback-offer`` renders that banner for the
SLO detail page, which loads it with htmx.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from portal.api_errors import UNSAFE, RefusedError, error_responses, refused_answer
from portal.auth.identity import Identity
from portal.changes.gitops import gitops_unavailable
from portal.changes.models import Change
from portal.clock import utcnow
from portal.config import Settings
from portal.db import SessionDep
from portal.deps import ChangesDep, SettingsDep, app_state
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.mlflow import ModelRegistry
from portal.models.owners import model_owners
from portal.models.promotion_view import banner_context
from portal.models.prompts import ModelsRuntime
from portal.models.rollback_offer import rollback_offers
from portal.proposals.evidence import EvidenceItem
from portal.proposals.promote_model import build_promotion, build_rollback, offer_evidence
from portal.proposals.propose import Proposal, propose
from portal.slo.routes import SloDep
from portal.slo.runtime import SLORuntime
from portal.ui.render import error_page, page

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/models", tags=["models"])


def app_model_registry(request: Request) -> ModelRegistry | None:
    """Return the app's model registry (None: none configured)."""
    return app_state(request.app, "models", ModelsRuntime).registry


RegistryDep = Annotated[ModelRegistry | None, Depends(app_model_registry)]


class PromoteIn(BaseModel):
    """Which version of the model to serve in which environment."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(max_length=20, examples=["3"])
    environment: str = Field(max_length=63, examples=["prod"])


class RollbackIn(BaseModel):
    """The environment to roll back; ``slo``: the paging SLO that suggested it (evidence)."""

    model_config = ConfigDict(extra="forbid")

    environment: str = Field(max_length=63, examples=["prod"])
    slo: str | None = Field(default=None, max_length=300, examples=["air-quality-availability"])


class ModelChangeOut(BaseModel):
    """The change proposed; its checks run next."""

    id: str
    status: str
    title: str
    branch: str
    commit: str | None
    model: dict[str, str]
    review: str


class ProposedModelChange(BaseModel):
    """The change (``change``) and where to poll it (``url``, ``GET /api/changes/{id}``)."""

    change: ModelChangeOut
    url: str


def _page_url(request: Request, name: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/models/{name}"


def _offer_evidence(
    request: Request,
    session: Session,
    slo: SLORuntime,
    name: str,
    environment: str,
    sloth_id: str | None,
) -> list[EvidenceItem]:
    """Return the evidence of the paging SLO ``sloth_id`` for this rollback, if it still pages."""
    if not sloth_id:
        return []
    status = slo.status(sloth_id)
    owner = model_owners(session).get(name)
    if status is None or owner is None:
        return []
    offers = rollback_offers(session, owner.service, [status], utcnow(), name)
    found = next((offer for offer in offers if offer.environment == environment), None)
    url = f"{str(request.base_url).rstrip('/')}/slos/{status.sloth_id}"
    return offer_evidence(found, url) if found is not None else []


def _proposal(
    request: Request,
    session: Session,
    repo: GitOpsRepo,
    registry: ModelRegistry | None,
    settings: Settings,
    slo: SLORuntime,
    action: str,
    name: str,
    values: dict[str, str | None],
) -> Proposal:
    identity: Identity = request.state.identity
    base = repo.refresh()
    environment = values.get("environment") or ""
    if action == "promote":
        return build_promotion(
            session,
            repo,
            base,
            registry,
            settings,
            identity,
            name,
            values.get("version") or "",
            environment,
            _page_url(request, name),
        )
    evidence = _offer_evidence(request, session, slo, name, environment, values.get("slo"))
    return build_rollback(
        session,
        repo,
        base,
        registry,
        settings,
        identity,
        name,
        environment,
        _page_url(request, name),
        evidence,
    )


def _answer(change: Change) -> ProposedModelChange:
    model = change.answers.get("model") or {}
    return ProposedModelChange(
        change=ModelChangeOut(
            id=change.id,
            status=change.status.value,
            title=change.title,
            branch=change.branch,
            commit=change.commit_sha,
            model={key: str(value) for key, value in model.items()},
            review=f"/reviews/{change.id}",
        ),
        url=f"/api/changes/{change.id}",
    )


_DESCRIBED = {
    401: "Not signed in",
    403: "Not allowed to propose changes to the model's service",
    404: "No catalog Component names this model",
    409: "The pin on main cannot be read, or nothing recorded to roll back to",
    503: "The model registry or the GitOps remote did not answer",
}


def _api(
    request: Request,
    session: Session,
    changes: ChangesDep,
    registry: ModelRegistry | None,
    slo: SLORuntime,
    action: str,
    name: str,
    values: dict[str, str | None],
) -> Any:
    if request.state.identity is None:
        raise HTTPException(401, f"sign in, or send the proxy's identity headers, to {action}")
    settings = changes.settings
    try:
        repo = changes.request_gitops()
        proposal = _proposal(request, session, repo, registry, settings, slo, action, name, values)
        change = propose(session, repo, settings, request.state.identity, proposal)
    except RefusedError as exc:
        return refused_answer(exc)
    except GitError as exc:
        raise HTTPException(503, gitops_unavailable(exc)) from exc
    return _answer(change)


@api_router.post(
    "/{name}/promote",
    status_code=201,
    response_model=ProposedModelChange,
    responses=error_responses(401, 403, 404, 409, 422, 503, *UNSAFE, described=_DESCRIBED),
)
def api_promote(
    name: str,
    body: PromoteIn,
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    registry: RegistryDep,
    slo: SloDep,
) -> Any:
    """Propose serving ``version`` of the model in ``environment``: a change to its pin.

    The version must be ``READY`` in the registry and not the one serving; the review's
    ``model validation`` check compares its metric with the serving version's.
    """
    values: dict[str, str | None] = {"version": body.version, "environment": body.environment}
    return _api(request, session, changes, registry, slo, "promote", name, values)


@api_router.post(
    "/{name}/rollback",
    status_code=201,
    response_model=ProposedModelChange,
    responses=error_responses(401, 403, 404, 409, 422, 503, *UNSAFE, described=_DESCRIBED),
)
def api_rollback(
    name: str,
    body: RollbackIn,
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    registry: RegistryDep,
    slo: SloDep,
) -> Any:
    """Propose serving again the version that served before the current one in ``environment``.

    The previous version comes from the model's audit (the merged change that set the
    current pin); 409 when none is recorded. Needs no validation, but a reviewer.
    """
    values = {"environment": body.environment, "slo": body.slo}
    return _api(request, session, changes, registry, slo, "rollback", name, values)


def _form(
    request: Request,
    session: Session,
    changes: ChangesDep,
    settings: Settings,
    registry: ModelRegistry | None,
    slo: SLORuntime,
    action: str,
    name: str,
    values: dict[str, str | None],
) -> Response:
    if request.state.identity is None:
        return error_page(request, "Sign in to propose", f"Sign in to {action} a model.", 401)
    try:
        repo = changes.request_gitops()
        proposal = _proposal(request, session, repo, registry, settings, slo, action, name, values)
        change = propose(session, repo, settings, request.state.identity, proposal)
    except RefusedError as exc:
        details = "; ".join(f"{field}: {message}" for field, message in exc.errors.items())
        headings = {403: "Not allowed", 404: "No such model", 503: "Unavailable"}
        return error_page(
            request,
            headings.get(exc.status, f"Nothing to {action}"),
            f"{exc.message}{': ' + details if details else ''}.",
            exc.status,
        )
    except GitError as exc:
        return error_page(request, "GitOps repository unavailable", gitops_unavailable(exc), 503)
    return RedirectResponse(f"/reviews/{change.id}", status_code=303)


FormText = Annotated[str, Form(max_length=300)]


@router.post("/models/{name}/promote", response_class=Response)
def promote_form(
    request: Request,
    name: str,
    session: SessionDep,
    changes: ChangesDep,
    settings: SettingsDep,
    registry: RegistryDep,
    slo: SloDep,
    version: FormText = "",
    environment: FormText = "",
) -> Response:
    """Propose the promotion chosen on the Models page, then show its review (303)."""
    values: dict[str, str | None] = {"version": version, "environment": environment}
    return _form(request, session, changes, settings, registry, slo, "promote", name, values)


@router.post("/models/{name}/rollback", response_class=Response)
def rollback_form(
    request: Request,
    name: str,
    session: SessionDep,
    changes: ChangesDep,
    settings: SettingsDep,
    registry: RegistryDep,
    slo: SloDep,
    environment: FormText = "",
    slo_id: Annotated[str, Form(alias="slo", max_length=300)] = "",
) -> Response:
    """Propose rolling ``environment`` back, then show its review (303)."""
    values: dict[str, str | None] = {"environment": environment, "slo": slo_id or None}
    return _form(request, session, changes, settings, registry, slo, "rollback", name, values)


@router.get("/slos/{sloth_id}/rollback-offer", response_class=HTMLResponse)
def slo_rollback_offer(
    request: Request, sloth_id: str, session: SessionDep, settings: SettingsDep, slo: SloDep
) -> Response:
    """Render the rollback banner of one paging SLO (empty when there is nothing to offer)."""
    status = slo.status(sloth_id)
    identity: Identity | None = request.state.identity
    statuses = [status] if status is not None else []
    service = status.service if status is not None else ""
    context = banner_context(session, identity, settings.admin_group, service, statuses)
    return page(request, "models/_rollback_banner.html", context)
