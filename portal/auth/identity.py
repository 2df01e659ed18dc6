"""Resolving the identity of each request from the session (local mode) or proxy headers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from portal.catalog.models import Entity, Relation
from portal.catalog.refs import RefError, parse_ref
from portal.config import AuthMode, Settings
from portal.ui.refusal import refusal


@dataclass(frozen=True)
class Identity:
    """A signed-in person: their catalog User ref, display name and Group refs."""

    user_ref: str
    display_name: str
    groups: frozenset[str]

    def is_member(self, group_ref: str) -> bool:
        """Return True when the person belongs to ``group_ref`` (a group key)."""
        return group_ref in self.groups

    def is_admin(self, admin_group: str) -> bool:
        """Return True for members of the platform admins group (``PORTAL_ADMIN_GROUP``)."""
        return self.is_member(f"group:default/{admin_group}".lower())


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
            scope.setdefault("state", {})["identity"] = self._resolve(scope)
        await self.app(scope, receive, send)

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
