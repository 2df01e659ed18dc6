"""An entity's History: its own route, loaded by the entity page when the section is revealed.

The entity page never reads git: a service with a thousand commits costs its page
nothing until someone scrolls to the History section (or follows its link without
JavaScript, which gets the same content as a full page).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.catalog.history import (
    History,
    PageRefusedError,
    checked_page,
    history_reader,
    main_head,
    service_history,
    service_of,
    unreadable,
)
from portal.catalog.store import get_entity
from portal.db import SessionDep
from portal.deps import ChangesDep
from portal.integrations.git import GitError
from portal.ui.render import page, wants_fragment

router = APIRouter(include_in_schema=False)


@router.get("/{kind}/{namespace}/{name}/history", response_class=HTMLResponse)
def entity_history(
    request: Request,
    session: SessionDep,
    changes: ChangesDep,
    kind: str,
    namespace: str,
    name: str,
    page_number: Annotated[str, Query(alias="page", max_length=20)] = "1",
) -> Response:
    """One page of the commits to the service's folder on GitOps ``main`` (``?page=``, from 1).

    htmx gets the ``history`` block for the entity page; everyone else a full page.
    """
    entity = get_entity(session, kind, namespace, name)
    if entity is None:
        raise HTTPException(404, f"There is no {kind} {namespace}/{name} in the catalog.")
    base = f"/catalog/{entity.kind_key}/{entity.namespace}/{entity.name}"
    if request.url.path != f"{base}/history":  # kind is case-insensitive: one URL per entity
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{base}/history{query}", status_code=301)
    service = service_of(entity.kind_key, entity.namespace, entity.name)
    if service is None:
        raise HTTPException(
            404,
            f"{entity.kind} {entity.namespace}/{entity.name} has no History: only Components "
            "of the default namespace named as a DNS-1123 label are services of the GitOps "
            "repository.",
        )
    try:
        number = checked_page(page_number)
    except PageRefusedError as exc:
        raise HTTPException(400, str(exc)) from None
    history: History | None = None
    problem = ""
    timeout = changes.settings.gitops_request_timeout_seconds
    try:
        gitops = changes.request_gitops()
        head, stale = main_head(gitops)
        reader = history_reader(gitops, timeout)
        history = service_history(session, reader, head, service, number, stale=stale)
    except GitError as exc:
        problem = unreadable(exc)
    context = {
        "active": "catalog",
        "entity": entity,
        "entity_url": base,
        "service": service,
        "history": history,
        "problem": problem,
    }
    # htmx swaps only 2xx answers: the section says what failed instead of staying blank.
    status = 503 if problem and not wants_fragment(request) else 200
    return page(request, "catalog/history.html", context, fragment="history", status_code=status)
