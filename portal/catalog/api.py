"""JSON API of the catalog, modelled on Backstage's ``/entities`` endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from portal.api_errors import error_responses
from portal.catalog.present import (
    EntityList,
    EntityOut,
    entity_list_json,
    entity_out,
    relations_by_source,
)
from portal.catalog.search import MAX_LIMIT, MAX_OFFSET, EntityQuery, list_entities
from portal.catalog.store import get_entity
from portal.db import SessionDep

router = APIRouter(prefix="/api/catalog", tags=["catalog"])


@router.get("/entities", response_model=EntityList, responses=error_responses(422))
def api_list_entities(
    session: SessionDep,
    q: Annotated[
        str,
        Query(
            description="Full-text search over name, title, tags, owner and description; "
            "every word must start a word of the entity. Best first: the name or title "
            "holds every word and the shown name starts with the first one; then the name "
            "or title holds every word; then the rest; each group in name order"
        ),
    ] = "",
    kind: Annotated[str, Query(description="Kind, case-insensitive (component, api ...)")] = "",
    owner: Annotated[str, Query(description="Owner ref, e.g. team-a or group:default/team-a")] = "",
    type: Annotated[str, Query(description="spec.type")] = "",
    lifecycle: Annotated[str, Query(description="spec.lifecycle")] = "",
    system: Annotated[str, Query(description="System ref")] = "",
    tag: Annotated[str, Query(description="A tag")] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """List entities, best matches first when ``q`` is given, each with its relations."""
    query = EntityQuery(
        q=q,
        kind=kind,
        owner=owner,
        type=type,
        lifecycle=lifecycle,
        system=system,
        tag=tag,
        limit=limit,
        offset=offset,
    )
    result = list_entities(session, query)
    relations = relations_by_source(session, [entity.ref for entity in result.items])
    page = {"total": result.total, "limit": limit, "offset": offset}
    return Response(entity_list_json(result.items, relations, page), media_type="application/json")


@router.get(
    "/entities/{kind}/{namespace}/{name}",
    response_model=EntityOut,
    responses=error_responses(422, described={404: "No such entity"}),
)
def api_get_entity(session: SessionDep, kind: str, namespace: str, name: str) -> EntityOut:
    """Return one entity by kind (case-insensitive), namespace and name."""
    entity = get_entity(session, kind, namespace, name)
    if entity is None:
        raise HTTPException(404, f"no entity {kind.lower()}:{namespace}/{name}")
    relations = relations_by_source(session, [entity.ref])
    return entity_out(entity, relations.get(entity.ref, []))
