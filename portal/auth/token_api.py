"""JSON API of service-account tokens: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from portal.api_errors import UNSAFE, error_responses, refused_answer
from portal.auth.identity import Identity
from portal.auth.models import PROPOSE_SCOPE, ServiceToken
from portal.auth.tokens import (
    TokenRequestError,
    aware,
    create_token,
    revoke_token,
    visible_tokens,
)
from portal.db import SessionDep
from portal.deps import SettingsDep

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    """A token to create: its name, the services it may propose changes to, an expiry."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=1000, examples=["model-promoter"])
    services: list[str] = Field(max_length=1000, examples=[["air-quality"]])
    scopes: list[str] = Field(default_factory=lambda: [PROPOSE_SCOPE], max_length=10)
    expires_at: datetime | None = Field(default=None, examples=["2027-06-30T00:00:00Z"])


class TokenOut(BaseModel):
    """A token as it is listed: never its secret."""

    id: str
    name: str
    scopes: list[str]
    services: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    """A new token with its secret: shown this once, stored only as a hash."""

    token: str


class TokenList(BaseModel):
    """The tokens the caller may manage, newest first."""

    items: list[TokenOut]


def token_out(token: ServiceToken) -> dict[str, Any]:
    """Return the listed fields of a token (times in UTC)."""
    when = {
        name: aware(value) if value is not None else None
        for name in ("created_at", "expires_at", "revoked_at", "last_used_at")
        for value in [getattr(token, name)]
    }
    return {
        "id": token.id,
        "name": token.name,
        "scopes": list(token.scopes),
        "services": list(token.services),
        "created_by": token.created_by,
        "revoked_by": token.revoked_by,
        **when,
    }


def _person(request: Request) -> Identity:
    identity: Identity | None = request.state.identity
    if identity is None:
        raise HTTPException(401, "sign in (or send the proxy's identity headers) to manage tokens")
    return identity


@router.post(
    "",
    status_code=201,
    response_model=TokenCreated,
    responses=error_responses(401, 403, 422, *UNSAFE),
)
def api_create_token(
    body: TokenIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Any:
    """Create a token for the named services: ``changes:propose`` (default), ``traces:write``.

    Platform admins, or members of the team owning every named service. The ``token`` in
    the answer is the only time the secret is shown; send it as
    ``Authorization: Bearer <token>``.
    """
    identity = _person(request)
    try:
        token, secret = create_token(
            session,
            identity,
            settings.admin_group,
            name=body.name,
            services=body.services,
            scopes=body.scopes,
            expires_at=body.expires_at,
        )
    except TokenRequestError as exc:
        return refused_answer(exc)
    return TokenCreated(**token_out(token), token=secret)


@router.get("", response_model=TokenList, responses=error_responses(401))
def api_tokens(request: Request, session: SessionDep, settings: SettingsDep) -> TokenList:
    """List the tokens you may manage (yours, your teams' services', all for admins)."""
    identity = _person(request)
    tokens = visible_tokens(session, identity, settings.admin_group)
    return TokenList(items=[TokenOut(**token_out(token)) for token in tokens])


@router.post(
    "/{token_id}/revoke",
    response_model=TokenOut,
    responses=error_responses(401, 403, 404, 422, *UNSAFE),
)
def api_revoke_token(
    token_id: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Any:
    """Revoke a token: every later use is refused (401). Revoking twice keeps the first."""
    identity = _person(request)
    try:
        token = revoke_token(session, identity, settings.admin_group, token_id)
    except TokenRequestError as exc:
        return refused_answer(exc)
    if token is None:
        raise HTTPException(404, f"no token {token_id}")
    return TokenOut(**token_out(token))
