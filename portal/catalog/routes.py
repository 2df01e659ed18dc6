"""Catalog pages: list with live search and filters, entity and group pages, import."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

import yaml
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from portal.catalog.graph import system_graph
from portal.catalog.importer import import_locations
from portal.catalog.models import ImportReport
from portal.catalog.relations import RELATION_LABELS
from portal.catalog.search import MAX_OFFSET, EntityQuery, facets, list_entities
from portal.catalog.store import get_entity, problems, problems_for, relations_of
from portal.db import SessionDep
from portal.slo.routes import entity_slos
from portal.ui.render import page

router = APIRouter(prefix="/catalog", include_in_schema=False)
PAGE_SIZE = 25


@router.get("", response_class=HTMLResponse)
def catalog_list(
    request: Request,
    session: SessionDep,
    q: str = "",
    kind: str = "",
    type: str = "",
    owner: str = "",
    lifecycle: str = "",
    system: str = "",
    tag: str = "",
    sort: str = "",
    desc: bool = False,
    offset: int = 0,
) -> Response:
    """Render the searchable, filterable, sortable and paginated entity list."""
    query = EntityQuery(
        q=q,
        kind=kind,
        type=type,
        owner=owner,
        lifecycle=lifecycle,
        system=system,
        tag=tag,
        sort=sort,
        desc=desc,
        limit=PAGE_SIZE,
        offset=min(max(offset, 0), MAX_OFFSET),
    )
    result = list_entities(session, query)
    context = {"active": "catalog", "result": result, "query": query, "facets": facets(session)}
    return page(request, "catalog/list.html", context, fragment="results")


def _require_admin(request: Request) -> None:
    identity = request.state.identity
    admin_group = request.app.state.settings.admin_group
    if identity is None:
        raise HTTPException(401, "Sign in to import catalog locations.")
    if not identity.is_admin(admin_group):
        raise HTTPException(403, f"Only members of {admin_group} can import catalog locations.")


def _import_page(
    request: Request,
    session: Session,
    *,
    locations: str = "",
    report: ImportReport | None = None,
    error: str | None = None,
) -> Response:
    context: dict[str, object] = {
        "active": "catalog",
        "report": report,
        "locations": locations,
        "problems": problems(session),
        "error": error,
    }
    return page(request, "catalog/import.html", context, status_code=400 if error else 200)


@router.get("/import", response_class=HTMLResponse)
def import_form(request: Request, session: SessionDep) -> Response:
    """Render the import form and the current import problems."""
    return _import_page(request, session)


@router.post("/import", response_class=HTMLResponse)
def import_submit(
    request: Request, session: SessionDep, locations: Annotated[str, Form()] = ""
) -> Response:
    """Import the given locations (one per line) and show what happened."""
    _require_admin(request)
    wanted = [line.strip() for line in locations.splitlines() if line.strip()]
    if not wanted:
        error = "locations: give at least one path or git+URL#REF:PATH"
        return _import_page(request, session, locations=locations, error=error)
    report = import_locations(session, wanted, request.app.state.settings)
    return _import_page(request, session, locations=locations, report=report)


@router.get("/{kind}/{namespace}/{name}", response_class=HTMLResponse)
def entity_page(
    request: Request, session: SessionDep, kind: str, namespace: str, name: str
) -> Response:
    """One entity: facts, relations, links, annotations, system graph and source."""
    entity = get_entity(session, kind, namespace, name)
    if entity is None:
        raise HTTPException(404, f"There is no {kind} {namespace}/{name} in the catalog.")
    canonical = f"/catalog/{entity.kind_key}/{entity.namespace}/{entity.name}"
    if request.url.path != canonical:  # kind is case-insensitive: one URL per entity
        return RedirectResponse(canonical, status_code=301)
    grouped = defaultdict(list)
    for relation in relations_of(session, entity.ref):
        grouped[relation.type].append(relation)
    context = {
        "active": "catalog",
        "entity": entity,
        "metadata": entity.document.get("metadata") or {},
        "spec": entity.document.get("spec") or {},
        "relations": dict(sorted(grouped.items())),
        "labels": RELATION_LABELS,
        "graph": system_graph(session, entity),
        "problems": problems_for(session, entity),
        "source_yaml": yaml.safe_dump(entity.document, sort_keys=False, allow_unicode=True),
        "slos": entity_slos(request, entity),
    }
    return page(request, "catalog/entity.html", context)
