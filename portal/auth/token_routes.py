"""The token page: list the API tokens you may manage, create one (secret shown once), revoke.

The rules (who may create, see or revoke a token) are those of the JSON API, in
:mod:`portal.auth.tokens`; these routes only parse the form and render.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.auth.models import PROPOSE_SCOPE, TRACES_WRITE_SCOPE
from portal.auth.tokens import (
    TokenRequestError,
    create_token,
    revoke_token,
    token_services,
    visible_tokens,
)
from portal.clock import utcnow
from portal.config import Settings
from portal.db import SessionDep
from portal.deps import SettingsDep
from portal.ui.render import page

router = APIRouter(prefix="/settings/tokens", include_in_schema=False)

PATH = "/settings/tokens"
DEFAULT_DAYS = 90
SCOPE_LABELS = {
    PROPOSE_SCOPE: "propose changes to these services (POST /api/changes)",
    TRACES_WRITE_SCOPE: "send these services' traces to the portal (OTLP, POST /v1/traces)",
}
MAX_DAYS = 3650


def _expiry_days(raw: str, errors: dict[str, str]) -> int | None:
    """Parse the expiry field: whole days from 1 to MAX_DAYS, or blank for no expiry."""
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        errors["expires_days"] = f"a whole number of days from 1 to {MAX_DAYS}, or blank"
        return None
    return int(raw)


def _form_errors(exc: TokenRequestError) -> dict[str, str]:
    """Place a refusal on the form's fields: ``services[2]`` is the services field."""
    if exc.status == 403:  # not a member of the owning team: the chosen services are at fault
        return {"services": exc.message}
    errors: dict[str, str] = {}
    for field, message in (exc.errors or {}).items():
        errors.setdefault(field.split("[", 1)[0], message)
    return errors or {"name": exc.message}


def _tokens_page(
    request: Request,
    session: Session,
    settings: Settings,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    identity: Identity | None = request.state.identity
    context: dict[str, Any] = {"active": "tokens", "path": PATH, **extra}
    if identity is not None:
        context |= {
            "tokens": visible_tokens(session, identity, settings.admin_group),
            "services": token_services(session, identity, settings.admin_group),
            "form": form
            or {
                "name": "",
                "services": [],
                "expires_days": str(DEFAULT_DAYS),
                "scopes": [PROPOSE_SCOPE],
            },
            "scopes": SCOPE_LABELS,
            "errors": errors or {},
        }
    return page(request, "auth/tokens.html", context, status_code=status_code)


@router.get("", response_class=HTMLResponse)
def tokens_page(
    request: Request, session: SessionDep, settings: SettingsDep, revoked: str = ""
) -> Response:
    """List the tokens you may manage and offer the form to create one; anonymous: sign in."""
    status = 200 if request.state.identity is not None else 401
    return _tokens_page(request, session, settings, revoked=revoked[:32], status_code=status)


@router.post("", response_class=HTMLResponse)
def create_token_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form()] = "",
    services: Annotated[list[str] | None, Form()] = None,
    expires_days: Annotated[str, Form()] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Create a token: its secret on the result page (this once), or the form with errors."""
    identity: Identity | None = request.state.identity
    if identity is None:
        return _tokens_page(request, session, settings, status_code=401)
    chosen = services or []
    # None ticked (or a client that predates the field): the original scope, proposing.
    granted = scopes or [PROPOSE_SCOPE]
    form = {"name": name, "services": chosen, "expires_days": expires_days, "scopes": granted}
    errors: dict[str, str] = {}
    days = _expiry_days(expires_days, errors)
    if errors:
        return _tokens_page(request, session, settings, form=form, errors=errors, status_code=422)
    try:
        token, secret = create_token(
            session,
            identity,
            settings.admin_group,
            name=name,
            services=chosen,
            scopes=granted,
            expires_at=utcnow() + timedelta(days=days) if days else None,
        )
    except TokenRequestError as exc:
        session.rollback()
        errors = _form_errors(exc)
        return _tokens_page(
            request, session, settings, form=form, errors=errors, status_code=exc.status
        )
    response = page(
        request, "auth/tokens_created.html", {"token": token, "secret": secret}, status_code=201
    )
    # The secret is in this page only: no cache may keep a copy of it.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/{token_id}/revoke", response_class=HTMLResponse)
def confirm_revoke(
    request: Request, session: SessionDep, settings: SettingsDep, token_id: str
) -> Response:
    """Ask to confirm a revocation (nothing changes until the confirmation is posted)."""
    identity: Identity | None = request.state.identity
    if identity is None:
        return _tokens_page(request, session, settings, status_code=401)
    token = next(
        (t for t in visible_tokens(session, identity, settings.admin_group) if t.id == token_id),
        None,
    )
    if token is None:
        raise HTTPException(404, f"no token {token_id} that you may manage")
    return page(request, "auth/tokens_revoke.html", {"active": "tokens", "token": token})


@router.post("/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token_form(
    request: Request, session: SessionDep, settings: SettingsDep, token_id: str
) -> Response:
    """Revoke a token: 303 back to the list; every later use of it gets 401."""
    identity: Identity | None = request.state.identity
    if identity is None:
        return _tokens_page(request, session, settings, status_code=401)
    try:
        token = revoke_token(session, identity, settings.admin_group, token_id)
    except TokenRequestError as exc:
        raise HTTPException(exc.status, exc.message) from None
    if token is None:
        raise HTTPException(404, f"no token {token_id}")
    return RedirectResponse(f"{PATH}?revoked={token.id}", status_code=303)
