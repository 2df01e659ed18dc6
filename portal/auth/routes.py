"""Sign-in (local mode: pick a catalog User) and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.auth.identity import identity_from_catalog
from portal.catalog.refs import RefError, parse_ref
from portal.catalog.search import EntityQuery, list_entities
from portal.config import AuthMode
from portal.db import SessionDep
from portal.deps import EngineDep, SettingsDep
from portal.ui.render import page

router = APIRouter(prefix="/auth", include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only follow redirects inside the portal (no ``//evil.example`` or absolute URLs)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/catalog"


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, session: SessionDep, q: str = "", next: str = "/") -> Response:
    """List catalog Users to sign in as (local mode only)."""
    users = list_entities(session, EntityQuery(q=q, kind="user", sort="name", limit=200))
    return page(
        request,
        "auth/sign_in.html",
        {"users": users, "q": q, "next": _safe_next(next), "error": None},
        fragment="users",
    )


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    engine: EngineDep,
    user: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Sign in as a catalog User; refused unless the portal runs in local mode."""
    error: str | None = None
    if settings.auth_mode is not AuthMode.LOCAL:
        error = "Sign-in is handled by the proxy in front of the portal (trusted-header mode)."
    else:
        try:
            user_ref = parse_ref(user, default_kind="user").key
        except RefError as exc:
            user_ref, error = "", f"user: {exc}"
        if not error and identity_from_catalog(engine, user_ref) is None:
            error = f"user: {user!r} is not a User in the catalog"
    if error:
        users = list_entities(session, EntityQuery(kind="user", sort="name", limit=200))
        context = {"users": users, "q": "", "next": _safe_next(next), "error": error}
        return page(request, "auth/sign_in.html", context, status_code=400)
    request.session["user"] = user_ref
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/sign-out")
def sign_out(request: Request) -> RedirectResponse:
    """Forget the signed-in user (the CSRF token is kept for the next form)."""
    request.session.pop("user", None)
    return RedirectResponse("/catalog", status_code=303)
