"""Changes and identities for the home page tests, stored as the change life cycle stores them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from portal.auth.identity import Identity, identity_from_catalog
from portal.changes.models import Change, ChangeStatus, CheckRun
from portal.clock import utcnow

PLATFORM = "group:default/platform-team"
ML = "group:default/ml-apps"
SRE = "group:default/sre"


def person(engine: Engine, name: str) -> Identity:
    """The identity local sign-in gives a catalog User (groups from the catalog)."""
    identity = identity_from_catalog(engine, f"user:default/{name}")
    assert identity is not None, f"{name} is not a User of the catalog"
    return identity


def add_change(
    session: Session,
    service: str,
    *,
    by: str,
    owner: str = PLATFORM,
    status: ChangeStatus = ChangeStatus.READY,
    minutes_ago: int = 0,
    checks: dict[str, int] | None = None,
    approved_by: str | None = None,
) -> Change:
    """Store one change of ``service`` requested by the User ``by`` (and its check runs)."""
    when = utcnow() - timedelta(minutes=minutes_ago)
    change = Change(
        title=f"Create {service} from FastAPI service",
        template="fastapi-service",
        template_version="1.0.0",
        service=service,
        owner_ref=owner,
        requester_ref=f"user:default/{by}",
        answers={"name": service},
        branch=f"scaffold/{service}",
        status=status,
        approved_by=approved_by,
        created_at=when,
        updated_at=when,
    )
    session.add(change)
    session.flush()
    for status_name, count in (checks or {}).items():
        for index in range(count):
            session.add(
                CheckRun(
                    change_id=change.id,
                    name=f"{status_name}-{index}",
                    status=status_name,
                    summary="",
                )
            )
    session.commit()
    session.refresh(change)
    return change
