"""Service-account API tokens: created by a person, shown once, stored hashed, revocable.

A token reads ``pst_<id>_<secret>``. The id finds the row; the secret (``secrets.token_urlsafe``,
256 bits) is compared by its SHA-256 with :func:`hmac.compare_digest`. A token carries
scopes for the services it names: ``changes:propose`` proposes changes (``POST
/api/changes``), never decides on them (see :func:`portal.review.decide.may_review`);
``traces:write`` sends those services' spans to the OTLP receiver (``POST /v1/traces``).

Who may create one: a platform admin, or a member of the team that owns every service it
names (the catalog Component of the same name). Who may see or revoke one: a platform
admin, its creator, or a member of a team owning one of its services.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from portal.api_errors import RefusedError
from portal.auth.models import PROPOSE_SCOPE, SCOPES, ServiceToken, TokenGrant
from portal.catalog.models import Relation
from portal.clock import utcnow
from portal.free_text import control_character

if TYPE_CHECKING:
    from portal.auth.identity import Identity

TOKEN_PREFIX = "pst_"  # noqa: S105 - the prefix of every token, not a secret
MAX_SERVICES = 50
_SHAPE = re.compile(r"^pst_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{20,100})$")
# A service a token or a proposal may name: a DNS-1123 label (the catalog Component's name).
SERVICE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# Compared against when the id is unknown, so both refusals take the same time.
_NO_SECRET = hashlib.sha256(b"no such token").hexdigest()


class TokenRefusedError(Exception):
    """A bearer token that does not authenticate (malformed, unknown, expired, revoked): 401."""


class TokenRequestError(RefusedError):
    """A refused token request: 403 (``message``) or 422 (one message per field)."""


def aware(moment: datetime) -> datetime:
    """Return ``moment`` in UTC (SQLite gives back naive datetimes of what was stored as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def service_owner(session: Session, service: str) -> str | None:
    """Return the Group ref owning ``service`` (its catalog Component), or None if unknown."""
    return session.exec(
        select(Relation.target_ref).where(
            Relation.source_ref == f"component:default/{service.lower()}",
            Relation.type == "ownedBy",
        )
    ).first()


def token_services(session: Session, identity: Identity, admin_group: str) -> list[str]:
    """Return the services ``identity`` may create a token for, sorted by name.

    The same rule as :func:`create_token`: every catalog Component for a platform admin,
    else those owned by one of the person's teams; an API token may create none.
    """
    if identity.token is not None:
        return []
    prefix = "component:default/"
    owned = session.exec(
        select(Relation.source_ref, Relation.target_ref).where(
            col(Relation.source_ref).startswith(prefix), Relation.type == "ownedBy"
        )
    )
    admin = identity.is_admin(admin_group)
    names = {
        source.removeprefix(prefix) for source, owner in owned if admin or identity.is_member(owner)
    }
    return sorted(name for name in names if SERVICE_NAME.fullmatch(name))


def _owners(session: Session, services: Sequence[str], errors: dict[str, str]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for index, service in enumerate(services):
        if not isinstance(service, str) or not SERVICE_NAME.fullmatch(service):
            errors[f"services[{index}]"] = f"{service!r} is not a service name (a DNS-1123 label)"
        elif (owner := service_owner(session, service)) is None:
            errors[f"services[{index}]"] = f"{service}: no catalog Component owns this name"
        else:
            owners[service] = owner
    return owners


def create_token(
    session: Session,
    identity: Identity,
    admin_group: str,
    *,
    name: str,
    services: Sequence[str],
    scopes: Sequence[str] = (PROPOSE_SCOPE,),
    expires_at: datetime | None = None,
) -> tuple[ServiceToken, str]:
    """Create a token and return it with its secret, which is never shown again.

    Raises :class:`TokenRequestError`: 422 naming the field at fault, 403 when the person
    is neither a platform admin nor a member of the team owning each named service.
    """
    if identity.token is not None:
        raise TokenRequestError("an API token cannot create API tokens; a person must", 403)
    errors: dict[str, str] = {}
    name = name.strip()
    if not name or len(name) > 100 or control_character(name, multiline=False) is not None:
        errors["name"] = "give the token a name of 1 to 100 characters on one line"
    if not services:
        errors["services"] = "name at least one service the token may propose changes to"
    elif len(services) > MAX_SERVICES:
        errors["services"] = f"at most {MAX_SERVICES} services per token"
    if unknown := sorted(set(scopes) - set(SCOPES)):
        errors["scopes"] = f"unknown scope {unknown[0]!r}; tokens can hold {', '.join(SCOPES)}"
    owners = _owners(session, list(services)[:MAX_SERVICES], errors)
    if expires_at is not None and aware(expires_at) <= utcnow():
        errors["expires_at"] = "the expiry must be in the future"
    if errors:
        raise TokenRequestError("the token was not created", 422, errors)
    if not identity.is_admin(admin_group):
        for service, owner in owners.items():
            if not identity.is_member(owner):
                raise TokenRequestError(
                    f"only members of {owner} (which owns {service}) or {admin_group} can "
                    f"create a token for {service}",
                    403,
                )
    secret = secrets.token_urlsafe(32)
    token = ServiceToken(
        id=secrets.token_hex(6),
        name=name,
        secret_sha256=_digest(secret),
        scopes=sorted(set(scopes)),
        services=sorted(owners),
        created_by=identity.user_ref,
        expires_at=aware(expires_at) if expires_at else None,
    )
    session.add(token)
    session.commit()
    session.refresh(token)
    return token, f"{TOKEN_PREFIX}{token.id}_{secret}"


def authenticate(engine: Engine, presented: str) -> TokenGrant:
    """Return what the bearer token ``presented`` grants, and record its use.

    Raises :class:`TokenRefusedError` with the reason: not a portal token, unknown or
    wrong secret (one message for both), revoked, expired. Revocation and expiry are only
    told to someone who holds the secret.
    """
    shape = _SHAPE.match(presented.strip())
    if shape is None:
        raise TokenRefusedError("the bearer token is not a portal API token (pst_<id>_<secret>)")
    with Session(engine) as session:
        token = session.get(ServiceToken, shape["id"])
        expected = token.secret_sha256 if token is not None else _NO_SECRET
        matches = hmac.compare_digest(expected, _digest(shape["secret"]))
        if token is None or not matches:
            raise TokenRefusedError("the API token is unknown or its secret is wrong")
        now = utcnow()
        if token.revoked_at is not None:
            raise TokenRefusedError(
                f"API token {token.id} ({token.name}) was revoked at "
                f"{aware(token.revoked_at):%Y-%m-%d %H:%M} UTC by {token.revoked_by}"
            )
        if token.expires_at is not None and aware(token.expires_at) <= now:
            raise TokenRefusedError(
                f"API token {token.id} ({token.name}) expired at "
                f"{aware(token.expires_at):%Y-%m-%d %H:%M} UTC"
            )
        session.execute(
            update(ServiceToken)
            .where(col(ServiceToken.id) == token.id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return TokenGrant(
            token_id=token.id,
            name=token.name,
            scopes=frozenset(token.scopes),
            services=frozenset(token.services),
            created_by=token.created_by,
        )


def may_manage(session: Session, token: ServiceToken, identity: Identity, admin_group: str) -> bool:
    """Tell whether ``identity`` may see and revoke ``token``."""
    if identity.token is not None:
        return False
    if identity.is_admin(admin_group) or identity.user_ref == token.created_by:
        return True
    return any(
        (owner := service_owner(session, service)) is not None and identity.is_member(owner)
        for service in token.services
    )


def visible_tokens(session: Session, identity: Identity, admin_group: str) -> list[ServiceToken]:
    """Return the tokens ``identity`` may manage, newest first (secrets are never stored)."""
    tokens = session.exec(select(ServiceToken).order_by(col(ServiceToken.created_at).desc()))
    return [token for token in tokens if may_manage(session, token, identity, admin_group)]


def revoke_token(
    session: Session, identity: Identity, admin_group: str, token_id: str
) -> ServiceToken | None:
    """Revoke a token (once: a second revocation keeps the first); None when not found.

    Raises :class:`TokenRequestError` (403) for someone who may not manage it.
    """
    token = session.get(ServiceToken, token_id)
    if token is None:
        return None
    if not may_manage(session, token, identity, admin_group):
        raise TokenRequestError(
            f"only its creator, a team owning one of its services or {admin_group} can revoke "
            f"token {token_id}",
            403,
        )
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        token.revoked_by = identity.user_ref
        session.add(token)
        session.commit()
        session.refresh(token)
    return token
