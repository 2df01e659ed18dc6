"""The service-account API token table, and what an authenticated token grants a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from portal.clock import utcnow

PROPOSE_SCOPE = "changes:propose"
"""Propose changes to the services the token names."""
TRACES_WRITE_SCOPE = "traces:write"
"""Send the spans of the services the token names to the portal's OTLP receiver."""
SCOPES = (PROPOSE_SCOPE, TRACES_WRITE_SCOPE)


class ServiceToken(SQLModel, table=True):
    """An API token of a machine (a promotion job, a remediation bot), stored hashed.

    The secret is shown once, when the token is created; only its SHA-256 is kept. The
    secret has 256 bits of entropy, so a plain hash is as hard to reverse as the secret
    is to guess (a slow password hash protects low-entropy secrets, which this is not).
    """

    __tablename__ = "auth_service_token"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=100)
    secret_sha256: str = Field(max_length=64)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    services: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=300)
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class TokenGrant:
    """What an authenticated token may do: its scopes, for the services it names.

    ``created_by`` is the person who created it: the accountable author of what it
    proposes, so they cannot approve those changes themselves either.
    """

    token_id: str
    name: str
    scopes: frozenset[str]
    services: frozenset[str]
    created_by: str

    def may_propose(self, service: str) -> bool:
        """Tell whether the token may propose changes to ``service``."""
        return PROPOSE_SCOPE in self.scopes and service in self.services

    def may_write_traces(self) -> bool:
        """Tell whether the token may send spans (of its services) to ``/v1/traces``."""
        return TRACES_WRITE_SCOPE in self.scopes
