"""A template's fleet as the page and the API show it: versions, lag, local edits, updates.

Put together from the services' answers files on ``main`` (:mod:`portal.fleet.scan`), the
template repository's version tags (:mod:`portal.fleet.releases`), each service's local
edits (:mod:`portal.fleet.local_edits`) and the open update changes in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select

from portal.changes.models import OPEN_STATUSES, UPDATE_KIND, Change
from portal.fleet.local_edits import LocalEdits, LocalEditsReader
from portal.fleet.releases import TemplateVersion, template_versions, versions_after
from portal.fleet.scan import RecordedFleet, RecordedService
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.scaffold.registry.offered import OfferedTemplate


@dataclass(frozen=True)
class FleetService:
    """One service a template generated, and how it stands against the template."""

    service: str
    owner: str | None
    version: str | None  # what its answers file records
    behind: int | None  # versions newer than it; None: its version is not the template's
    local_edits: LocalEdits | None  # None: not computed for this view
    open_updates: tuple[str, ...] = ()  # ids of its open update changes


@dataclass
class Fleet:
    """The services a template generated on ``main`` and the template's versions."""

    template: str
    main: str
    versions: list[TemplateVersion]
    services: list[FleetService] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def newest(self) -> TemplateVersion | None:
        """Return the template's newest version, if it has any."""
        return self.versions[0] if self.versions else None

    @property
    def behind(self) -> int:
        """Return how many services are behind the newest version."""
        return sum(1 for entry in self.services if entry.behind)


def versions_of(template: OfferedTemplate) -> list[TemplateVersion]:
    """Return the template's versions, newest first (none when its repository is unreadable)."""
    try:
        return template_versions(Path(template.src))
    except GitError:
        return []


def open_updates(session: Session, template: str) -> dict[str, list[str]]:
    """Return the ids of the template's open update changes, by service."""
    rows = session.exec(
        select(Change.service, Change.id)
        .where(Change.kind == UPDATE_KIND, Change.template == template)
        .where(col(Change.status).in_(OPEN_STATUSES))
        .order_by(col(Change.created_at))
    ).all()
    found: dict[str, list[str]] = {}
    for service, change_id in rows:
        found.setdefault(service, []).append(change_id)
    return found


def _behind(
    template: OfferedTemplate, versions: Sequence[TemplateVersion], entry: RecordedService
) -> int | None:
    if entry.commit is None:
        return None
    try:
        return len(versions_after(Path(template.src), versions, entry.commit))
    except (GitError, ValueError):
        return None


def fleet_of(
    session: Session,
    repo: GitOpsRepo,
    recorded: RecordedFleet,
    template: OfferedTemplate,
    *,
    edits: LocalEditsReader | None = None,
    environments: Sequence[str] = (),
) -> Fleet:
    """Return ``template``'s fleet on the commit of ``recorded``.

    ``edits``: compute each service's local edits with it (a render per service the first
    time); None leaves them out.
    """
    name = template.info.name
    versions = versions_of(template)
    services = recorded.of(template)
    updates = open_updates(session, name)
    local = (
        edits.of(repo, recorded.commit, template, services, environments)
        if edits is not None
        else {}
    )
    fleet = Fleet(name, recorded.commit, versions, problems=dict(recorded.problems))
    for entry in services:
        owner = entry.answers.get("owner")
        fleet.services.append(
            FleetService(
                service=entry.service,
                owner=owner if isinstance(owner, str) else None,
                version=entry.commit,
                behind=_behind(template, versions, entry),
                local_edits=local.get(entry.service),
                open_updates=tuple(updates.get(entry.service, ())),
            )
        )
    return fleet
