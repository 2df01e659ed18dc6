"""JSON API of template fleets: ``GET /api/templates/{name}/fleet``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from portal.api_errors import error_responses
from portal.changes.gitops import gitops_unavailable
from portal.db import SessionDep
from portal.deps import ChangesDep
from portal.fleet.runtime import FleetDep
from portal.fleet.status import Fleet
from portal.integrations.git import GitError

router = APIRouter(prefix="/api", tags=["fleet"])


class LocalEditsOut(BaseModel):
    """How a service differs from a fresh render of its template at its version."""

    modified: list[str]
    added: list[str]
    removed: list[str]
    error: str | None


class FleetServiceOut(BaseModel):
    """One service generated from the template."""

    service: str
    owner: str | None
    version: str | None
    behind: int | None
    local_edits: LocalEditsOut | None
    open_updates: list[str]


class VersionOut(BaseModel):
    """One version (tag) of the template."""

    tag: str
    version: str
    commit: str
    date: datetime


class FleetOut(BaseModel):
    """A template's services on the GitOps ``main``, and its versions (newest first)."""

    template: str
    main: str
    newest: str | None
    behind: int
    versions: list[VersionOut]
    services: list[FleetServiceOut]
    problems: dict[str, str]


def fleet_out(fleet: Fleet) -> FleetOut:
    """Return the API's view of ``fleet``."""
    return FleetOut(
        template=fleet.template,
        main=fleet.main,
        newest=fleet.newest.tag if fleet.newest else None,
        behind=fleet.behind,
        versions=[
            VersionOut(tag=v.tag, version=v.version, commit=v.commit, date=v.date)
            for v in fleet.versions
        ],
        services=[
            FleetServiceOut(
                service=entry.service,
                owner=entry.owner,
                version=entry.version,
                behind=entry.behind,
                local_edits=None
                if entry.local_edits is None
                else LocalEditsOut(
                    modified=list(entry.local_edits.modified),
                    added=list(entry.local_edits.added),
                    removed=list(entry.local_edits.removed),
                    error=entry.local_edits.error,
                ),
                open_updates=list(entry.open_updates),
            )
            for entry in fleet.services
        ],
        problems=fleet.problems,
    )


@router.get(
    "/templates/{name}/fleet",
    response_model=FleetOut,
    responses=error_responses(422, 503, described={404: "No such template"}),
)
def api_fleet(
    name: str,
    session: SessionDep,
    fleet: FleetDep,
    changes: ChangesDep,
    local_edits: Annotated[
        bool, Query(description="Compare each service with a render at its version")
    ] = True,
) -> FleetOut:
    """List the services on ``main`` generated from the template, with how far behind each is."""
    try:
        found = fleet.fleet(session, changes.request_gitops, name, local_edits=local_edits)
    except GitError as exc:
        raise HTTPException(503, gitops_unavailable(exc)) from exc
    if found is None:
        raise HTTPException(404, f"no template {name}")
    return fleet_out(found)
