"""Catalog pages: list with live search and filters, entity and group pages, import."""

from __future__ import annotations

from typing import Annotated

import yaml
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.catalog.display import entity_page_view, list_view
from portal.catalog.graph import system_graph
from portal.catalog.history_routes import router as history_router
from portal.catalog.importer import import_locations
from portal.catalog.models import Entity, ImportReport
from portal.catalog.relations import RELATION_LABELS
from portal.catalog.search import (
    ALL_KINDS,
    MAX_OFFSET,
    EntityQuery,
    facets,
    filter_ref,
    list_entities,
)
from portal.catalog.store import get_entity, problems, problems_for
from portal.catalog.sync_state import entity_sync_state
from portal.cost.entity import entity_monthly_cost
from portal.db import SessionDep
from portal.deps import SettingsDep
from portal.models.owners import model_names
from portal.slo.routes import SloDep, entity_slos
from portal.traces.routes import entity_traces
from portal.ui.render import page

router = APIRouter(prefix="/catalog", include_in_schema=False)
router.include_router(history_router)  # /catalog/{kind}/{namespace}/{name}/history
PAGE_SIZE = 25
DEFAULT_KIND = "component"  # what most visitors look for; the kind filter offers the rest


@router.get("", response_class=HTMLResponse)
def catalog_list(
    request: Request,
    session: SessionDep,
    q: str = "",
    kind: str | None = None,
    type: str = "",
    owner: str = "",
    lifecycle: str = "",
    system: str = "",
    tag: str = "",
    sort: str = "",
    desc: bool = False,
    mine: bool = False,
    offset: int = 0,
) -> Response:
    """Render the searchable, filterable, sortable and paginated entity list.

    Without a ``kind`` it lists Components (``kind=all``: every kind); ``mine=1`` keeps
    what the signed-in person's groups own.
    """
    identity: Identity | None = request.state.identity
    query = EntityQuery(
        q=q,
        kind=DEFAULT_KIND if kind is None else kind or ALL_KINDS,
        type=type,
        owner=filter_ref(owner, "group") if owner else "",  # the select's value: a full ref
        lifecycle=lifecycle,
        system=system,
        tag=tag,
        sort=sort,
        desc=desc,
        limit=PAGE_SIZE,
        offset=min(max(offset, 0), MAX_OFFSET),
        mine=mine,
        owners=identity.groups if mine and identity is not None else None,
    )
    result = list_entities(session, query)
    values = facets(session)
    context = {
        "active": "catalog",
        "result": result,
        "query": query,
        "facets": values,
        "view": list_view(session, result.items, values),
    }
    return page(request, "catalog/list.html", context, fragment="results")


def _require_admin(request: Request, admin_group: str) -> None:
    identity = request.state.identity
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
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    locations: Annotated[str, Form()] = "",
) -> Response:
    """Import the given locations (one per line) and show what happened."""
    _require_admin(request, settings.admin_group)
    wanted = [line.strip() for line in locations.splitlines() if line.strip()]
    if not wanted:
        error = "locations: give at least one path or git+URL#REF:PATH"
        return _import_page(request, session, locations=locations, error=error)
    report = import_locations(session, wanted, settings)
    return _import_page(request, session, locations=locations, report=report)


def component_models(entity: Entity) -> list[str]:
    """Return the registered models a Component names (each links to its /models page)."""
    metadata = entity.document.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if entity.kind_key != "component" or not isinstance(annotations, dict):
        return []
    return model_names(annotations)


@router.get("/{kind}/{namespace}/{name}", response_class=HTMLResponse)
def entity_page(
    request: Request, session: SessionDep, slo: SloDep, kind: str, namespace: str, name: str
) -> Response:
    """One entity: facts, relations, links, annotations, system graph and source."""
    entity = get_entity(session, kind, namespace, name)
    if entity is None:
        raise HTTPException(404, f"There is no {kind} {namespace}/{name} in the catalog.")
    canonical = f"/catalog/{entity.kind_key}/{entity.namespace}/{entity.name}"
    if request.url.path != canonical:  # kind is case-insensitive: one URL per entity
        return RedirectResponse(canonical, status_code=301)
    context = {
        "active": "catalog",
        "entity": entity,
        "metadata": entity.document.get("metadata") or {},
        "spec": entity.document.get("spec") or {},
        "view": entity_page_view(session, entity),
        "labels": RELATION_LABELS,
        "graph": system_graph(session, entity),
        "problems": problems_for(session, entity),
        "source_yaml": yaml.safe_dump(entity.document, sort_keys=False, allow_unicode=True),
        "slos": entity_slos(slo, entity),
        "models": component_models(entity),
        "traces": entity_traces(getattr(request.app.state, "traces", None), entity),
        "sync_state": entity_sync_state(getattr(request.app.state, "sync_state", None), entity),
        "monthly_cost": entity_monthly_cost(
            getattr(request.app.state, "cost", None), entity.kind_key, entity.namespace, entity.name
        ),
    }
    return page(request, "catalog/entity.html", context)
