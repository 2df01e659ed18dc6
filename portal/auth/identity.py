"""Resolving the identity of each request: session (local mode), proxy headers, or an API token.

An ``Authorization: Bearer pst_...`` header on the JSON API (``/api/...``) authenticates a
service-account token instead (:mod:`portal.auth.tokens`), whatever the session or proxy
headers say (other ``Authorization`` headers are not the portal's and are ignored); so does
one on the OTLP receiver (``/v1/traces``). A token identity belongs to no group, so it has
no approval rights, and it may make two kinds of write: proposals (``POST /api/changes``,
model promotions) and trace exports (``POST /v1/traces``; the route checks the scope and
services). A bad, expired or revoked token is refused with 401; any other write with 403.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from portal.auth.models import TokenGrant
from portal.auth.tokens import TOKEN_PREFIX, TokenRefusedError, authenticate
from portal.catalog.models import Entity, Relation
from portal.catalog.refs import RefError, parse_ref
from portal.config import AuthMode, Settings
from portal.ui.refusal import refusal

OTLP_TRACES = "/v1/traces"  # the OTLP/HTTP receiver: exporters authenticate with a token
# The writes a token may make, as (method, path): it proposes, and nothing else. A model
# promotion or rollback is a proposal too (the service scope is checked when proposing).
TOKEN_WRITES = frozenset({("POST", "/api/changes"), ("POST", OTLP_TRACES)})
TOKEN_WRITE_PATHS = re.compile(r"^/api/models/[^/]+/(promote|rollback)$")
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _token_may_write(method: str, path: str) -> bool:
    """Say whether an API token may make this write: proposals and trace exports only."""
    return (method, path) in TOKEN_WRITES or (
        method == "POST" and TOKEN_WRITE_PATHS.fullmatch(path) is not None
    )


@dataclass(frozen=True)
class Identity:
    """A signed-in person (catalog User ref, display name, Group refs), or an API token.

    A token identity (``token`` set) has the ref ``token:<id>`` and no groups.
    """

    user_ref: str
    display_name: str
    groups: frozenset[str]
    token: TokenGrant | None = None

    def is_member(self, group_ref: str) -> bool:
        """Return True when the person belongs to ``group_ref`` (a group key)."""
        return group_ref in self.groups

    def is_admin(self, admin_group: str) -> bool:
        """Return True for members of the platform admins group (``PORTAL_ADMIN_GROUP``)."""
        return self.is_member(f"group:default/{admin_group}".lower())


def token_identity(grant: TokenGrant) -> Identity:
    """Return the identity of an authenticated API token: no groups, so no approval rights."""
    return Identity(f"token:{grant.token_id}", f"API token {grant.name}", frozenset(), grant)


def group_key(name: str) -> str | None:
    """Return the canonical ref of a group given as ``team-a`` or ``group:default/team-a``."""
    try:
        return parse_ref(name, default_kind="group").key
    except RefError:
        return None


def identity_from_headers(user: str, groups: str) -> Identity | None:
    """Build an identity from trusted proxy headers (groups comma-separated)."""
    user = user.strip()
    if not user:
        return None
    try:
        user_ref = parse_ref(user, default_kind="user").key
    except RefError:
        return None
    keys = {group_key(part) for part in groups.split(",") if part.strip()}
    return Identity(user_ref, user, frozenset(key for key in keys if key))


def identity_from_catalog(engine: Engine, user_ref: str) -> Identity | None:
    """Look a catalog User up, with the groups the catalog says they belong to."""
    with Session(engine) as session:
        user = session.exec(
            select(Entity).where(Entity.ref == user_ref, Entity.kind_key == "user")
        ).first()
        if user is None:
            return None
        groups = session.exec(
            select(Relation.target_ref)
            .where(Relation.source_ref == user_ref, Relation.type == "memberOf")
            .distinct()
        ).all()
    profile = (user.document.get("spec") or {}).get("profile") or {}
    display = profile.get("displayName") if isinstance(profile, dict) else None
    return Identity(user_ref, str(display or user.name), frozenset(groups))


class IdentityMiddleware:
    """Puts ``request.state.identity`` (an :class:`Identity` or None) on every HTTP request."""

    def __init__(self, app: ASGIApp, settings: Settings, engine: Engine) -> None:
        self.app = app
        self.settings = settings
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Resolve the identity, then hand the request on; refuse repeated identity headers."""
        if scope["type"] == "http":
            repeated = self._repeated_identity_header(scope)
            if repeated:
                reason = (
                    f"The request carries the {repeated} header more than once; the proxy in "
                    "front of the portal sends each identity header exactly once."
                )
                await refusal(scope, 400, reason)(scope, receive, send)
                return
            bearer = self._bearer(scope)
            if bearer is not None:
                identity: Identity | None = None
                try:
                    identity = token_identity(authenticate(self.engine, bearer))
                except TokenRefusedError as exc:
                    await _token_refusal(401, str(exc))(scope, receive, send)
                    return
                if (method := scope["method"].upper()) in _UNSAFE and not _token_may_write(
                    method, scope["path"].rstrip("/")
                ):
                    reason = (
                        f"{identity.display_name} may only propose changes (POST /api/changes) "
                        f"and send traces (POST {OTLP_TRACES}); {method} {scope['path']} needs "
                        "a person"
                    )
                    await _token_refusal(403, reason)(scope, receive, send)
                    return
            else:
                identity = self._resolve(scope)
            scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)

    @staticmethod
    def _bearer(scope: Scope) -> str | None:
        """Return the portal API token of an ``Authorization: Bearer pst_...`` header, if any.

        Only on the JSON API and the OTLP receiver (pages ignore it), and only a portal
        token: a proxy in front of
        the portal may pass on its own ``Authorization`` header (an OIDC token), which must
        not shadow the identity headers it sets.
        """
        path = str(scope.get("path", ""))
        if not path.startswith("/api/") and path.rstrip("/") != OTLP_TRACES:
            return None
        scheme, _, credentials = Headers(scope=scope).get("authorization", "").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials.startswith(TOKEN_PREFIX):
            return None
        return credentials

    def _repeated_identity_header(self, scope: Scope) -> str | None:
        """Return the identity header sent more than once (trusted-header mode), if any.

        With two, which one wins depends on the server and the code reading them: a client
        could add its own next to the proxy's. Names compare case-insensitively, as in HTTP.
        """
        if self.settings.auth_mode is not AuthMode.TRUSTED_HEADER:
            return None
        names = Counter(key.decode("latin-1").lower() for key, _ in scope["headers"])
        for header in (self.settings.user_header, self.settings.groups_header):
            if names[header.lower()] > 1:
                return header
        return None

    def _resolve(self, scope: Scope) -> Identity | None:
        if self.settings.auth_mode is AuthMode.TRUSTED_HEADER:
            headers = Headers(scope=scope)
            user = headers.get(self.settings.user_header, "")
            groups = headers.get(self.settings.groups_header, "")
            return identity_from_headers(user, groups)
        user_ref = scope.get("session", {}).get("user")
        if not isinstance(user_ref, str):
            return None
        return identity_from_catalog(self.engine, user_ref)


def _token_refusal(status: int, reason: str) -> JSONResponse:
    """Refuse a request made with an API token (always JSON: tokens only reach ``/api/``)."""
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else {}
    return JSONResponse({"detail": reason}, status_code=status, headers=headers)
