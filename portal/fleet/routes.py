"""A template's page: its versions and its fleet, the services on ``main`` it generated.

The page itself reads only the template's versions; the fleet section (one render per
service the first time, for its local edits) comes from its own route when the page has
loaded, so the page never waits for Copier. Without JavaScript, the section's link opens
the fleet as a page of its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from portal.changes.gitops import gitops_unavailable
from portal.db import SessionDep
from portal.deps import ChangesDep
from portal.fleet.release_view import default_pair, touched
from portal.fleet.runtime import FleetDep
from portal.fleet.status import versions_of
from portal.integrations.copier import RenderError
from portal.integrations.git import GitError
from portal.ui.render import error_page, page

router = APIRouter(prefix="/templates", include_in_schema=False)
service_router = APIRouter(prefix="/fleet", include_in_schema=False)
TEMPLATE_PAGE = "fleet/template.html"


def _missing(request: Request, name: str) -> HTMLResponse:
    return error_page(
        request, "No such template", f"There is no template named {name!r}.", status_code=404
    )


@router.get("/{name}", response_class=HTMLResponse)
def template_page(request: Request, fleet: FleetDep, name: str) -> Response:
    """Show a template: what it is, its versions, and (loaded next) its fleet."""
    template = fleet.scaffold.context.registry.get(name)
    if template is None:
        return _missing(request, name)
    context = {"active": "create", "template": template, "versions": versions_of(template)}
    return page(request, TEMPLATE_PAGE, context)


@router.get("/{name}/fleet", response_class=HTMLResponse)
def fleet_section(
    request: Request, session: SessionDep, fleet: FleetDep, changes: ChangesDep, name: str
) -> Response:
    """Show the template's fleet: the section for htmx, the whole page otherwise."""
    template = fleet.scaffold.context.registry.get(name)
    if template is None:
        return _missing(request, name)
    context = {"active": "create", "template": template, "versions": versions_of(template)}
    try:
        context["fleet"] = fleet.fleet(session, changes.request_gitops, name)
    except GitError as exc:
        context["problem"] = gitops_unavailable(exc)
    return page(request, TEMPLATE_PAGE, context, fragment="fleet")


@router.get("/{name}/release", response_class=HTMLResponse)
def release_section(
    request: Request,
    session: SessionDep,
    fleet: FleetDep,
    changes: ChangesDep,
    name: str,
    from_tag: Annotated[str, Query(alias="from")] = "",
    to_tag: Annotated[str, Query(alias="to")] = "",
) -> Response:
    """Show what a release changes: the section for htmx, the whole page otherwise."""
    template = fleet.scaffold.context.registry.get(name)
    if template is None:
        return _missing(request, name)
    versions = versions_of(template)
    context: dict[str, Any] = {"active": "create", "template": template, "versions": versions}
    pair = (from_tag, to_tag) if from_tag and to_tag else default_pair(versions)
    context["release_problem"] = None if pair else "There is only one version: nothing to compare."
    if pair is not None:
        try:
            environments = fleet.scaffold.environments(changes.request_gitops) or []
            context["release"] = fleet.releases.between(template, *pair, environments)
        except (GitError, RenderError, ValueError) as exc:
            context["release_problem"] = f"Cannot compare {pair[0]} and {pair[1]}: {exc}"
        try:
            found = fleet.fleet(session, changes.request_gitops, name, local_edits=False)
            context["touched"] = touched(found, versions, pair[1]) if found else None
        except GitError:  # the GitOps repository is down: the count is left out
            context["touched"] = None
    return page(request, TEMPLATE_PAGE, context, fragment="release")


@service_router.get("/services/{service}", response_class=HTMLResponse)
def service_section(
    request: Request, session: SessionDep, fleet: FleetDep, changes: ChangesDep, service: str
) -> Response:
    """Show the Template section of a service's entity page (the page without htmx)."""
    context: dict[str, Any] = {"active": "catalog", "service": service, "problem": None}
    try:
        context["found"] = fleet.service(session, changes.request_gitops, service)
    except GitError as exc:
        context["found"], context["problem"] = None, gitops_unavailable(exc)
    return page(request, "fleet/service.html", context, fragment="section")
