"""What the home page lists from the database, each list bounded.

Every panel is one query with a ``LIMIT`` (one more row than shown, to tell whether there
are more); the check counts of the reviews waiting are one grouped query for all of
them, so the page costs the same number of queries whatever the catalog's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import func
from sqlmodel import Session, col, select

from portal.auth.identity import Identity
from portal.catalog.models import Entity
from portal.catalog.refs import split_key
from portal.changes.models import OPEN_STATUSES, Change, ChangeStatus, CheckRun
from portal.review.decide import may_review

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """How many rows each panel shows at most."""

    services: int = 12
    changes: int = 10
    reviews: int = 10
    merges: int = 8


@dataclass(frozen=True)
class Listing(Generic[T]):
    """The rows a panel shows, and whether the database holds more than these."""

    items: Sequence[T] = ()
    more: bool = False

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Team:
    """One group the person belongs to, as the page links it."""

    ref: str

    @property
    def name(self) -> str:
        """The group's name (``platform-team``)."""
        return split_key(self.ref)[2]

    @property
    def href(self) -> str:
        """The group's catalog page."""
        kind, namespace, name = split_key(self.ref)
        return f"/catalog/{kind}/{namespace}/{name}"


@dataclass(frozen=True)
class Summary:
    """The signed-in person's home page, without the SLO panel (see :mod:`.alerts`)."""

    identity: Identity
    is_admin: bool
    teams: Sequence[Team]
    services: Listing[Entity]
    my_changes: Listing[Change]
    reviews: Listing[Change]
    merges: Listing[Change]
    check_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def checks_of(self, change_id: str) -> dict[str, int]:
        """How many checks of a change ended in each status (``{"passed": 16}``)."""
        return self.check_counts.get(change_id, {})


def _listing(rows: Sequence[T], limit: int) -> Listing[T]:
    return Listing(tuple(rows[:limit]), more=len(rows) > limit)


def team_services(session: Session, groups: frozenset[str], limit: int) -> Listing[Entity]:
    """Return the Components owned by one of ``groups`` (group keys), by name.

    Orphaned Components (their file no longer defines them) are left out.
    """
    if not groups:
        return Listing()
    query = (
        select(Entity)
        .where(
            Entity.kind_key == "component",
            col(Entity.owner_ref).in_(sorted(groups)),
            col(Entity.orphan).is_(False),
        )
        .order_by(col(Entity.name), col(Entity.namespace))
        .limit(limit + 1)
    )
    return _listing(session.exec(query).all(), limit)


def open_changes_by(session: Session, user_ref: str, limit: int) -> Listing[Change]:
    """Return the open changes ``user_ref`` requested, the most recently active first."""
    query = (
        select(Change)
        .where(Change.requester_ref == user_ref, col(Change.status).in_(OPEN_STATUSES))
        .order_by(col(Change.updated_at).desc(), col(Change.id))
        .limit(limit + 1)
    )
    return _listing(session.exec(query).all(), limit)


def reviews_waiting(
    session: Session, identity: Identity, admin_group: str, limit: int
) -> Listing[Change]:
    """Return the changes whose checks are done that ``identity`` may decide on, oldest first.

    The query narrows to what :func:`~portal.review.decide.may_review` would allow (not
    the person's own changes; their teams' changes, or every change for a platform admin);
    ``may_review`` then has the last word, so the page never offers what the decision
    would refuse.
    """
    query = select(Change).where(
        Change.status == ChangeStatus.READY, Change.requester_ref != identity.user_ref
    )
    if not identity.is_admin(admin_group):
        if not identity.groups:
            return Listing()
        query = query.where(col(Change.owner_ref).in_(sorted(identity.groups)))
    query = query.order_by(col(Change.updated_at), col(Change.id)).limit(limit + 1)
    rows = [
        change
        for change in session.exec(query).all()
        if may_review(change, identity, admin_group) is None
    ]
    return _listing(rows, limit)


def recent_merges(session: Session, limit: int) -> Listing[Change]:
    """Return the last merged changes, the latest first."""
    query = (
        select(Change)
        .where(Change.status == ChangeStatus.MERGED)
        .order_by(col(Change.updated_at).desc(), col(Change.id))
        .limit(limit + 1)
    )
    return _listing(session.exec(query).all(), limit)


def check_counts(session: Session, change_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Count each change's checks by status, in one query for all of ``change_ids``."""
    if not change_ids:
        return {}
    rows: Sequence[Any] = session.exec(
        select(CheckRun.change_id, CheckRun.status, func.count())
        .where(col(CheckRun.change_id).in_(sorted(set(change_ids))))
        .group_by(col(CheckRun.change_id), col(CheckRun.status))
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for change_id, status, count in rows:
        counts.setdefault(change_id, {})[status] = int(count)
    return counts


def build_summary(
    session: Session, identity: Identity, admin_group: str, limits: Limits | None = None
) -> Summary:
    """Collect every database panel of ``identity``'s home page."""
    limits = limits or Limits()
    reviews = reviews_waiting(session, identity, admin_group, limits.reviews)
    return Summary(
        identity=identity,
        is_admin=identity.is_admin(admin_group),
        teams=[Team(ref) for ref in sorted(identity.groups)],
        services=team_services(session, identity.groups, limits.services),
        my_changes=open_changes_by(session, identity.user_ref, limits.changes),
        reviews=reviews,
        merges=recent_merges(session, limits.merges),
        check_counts=check_counts(session, [change.id for change in reviews.items]),
    )
