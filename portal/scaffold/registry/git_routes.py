"""The bundled templates' git repositories, served read-only over git's smart HTTP protocol.

Services record a bundled template as ``<PORTAL_TEMPLATE_PUBLIC_BASE_URL>/<name>.git``
(:func:`portal.scaffold.registry.offered.public_url`), and this is what answers there, so
``git clone`` and ``copier update`` work from any machine that reaches the portal:

- ``GET /templates.git/<name>.git/info/refs?service=git-upload-pack``
- ``POST /templates.git/<name>.git/git-upload-pack``

Only names of published bundled templates are served (anything else is 404, whatever the
path holds); pushes (``git-receive-pack``) are refused with 403, other services and the
dumb protocol with 400. Git itself answers through :mod:`portal.integrations.git_http`.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from portal.integrations.git import GitError
from portal.integrations.git_http import (
    RECEIVE_PACK,
    REQUEST_MEDIA_TYPE,
    UPLOAD_PACK,
    GitHttpError,
    UploadPackRequest,
    check_request_headers,
    upload_pack,
)
from portal.scaffold.registry.manifest import TemplateError
from portal.scaffold.runtime import ScaffoldDep

TEMPLATES_GIT_PATH = "/templates.git"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_READ_ONLY = "The portal serves its template repositories read-only: pushing is not allowed."

router = APIRouter(prefix=TEMPLATES_GIT_PATH, include_in_schema=False)


async def _repository(runtime: ScaffoldDep, name: str) -> Path:
    """Return the published repository of the bundled template ``name``, else 404."""
    found = None
    if _NAME.match(name):
        try:
            # Publishing on first use runs git: never on the event loop.
            found = await run_in_threadpool(runtime.context.registry.published_repository, name)
        except (TemplateError, GitError) as exc:
            raise HTTPException(503, f"The bundled templates cannot be read: {exc}") from None
    if found is None:
        raise HTTPException(404, f"No template repository named {name[:80]!r}.git here.")
    return found


def _git_headers(request: Request) -> tuple[str | None, str | None]:
    """Return the request's Content-Encoding and Git-Protocol, refused (400) when malformed."""
    encoding = request.headers.get("content-encoding") or None
    protocol = request.headers.get("git-protocol") or None
    try:
        check_request_headers(encoding, protocol)
    except GitHttpError as exc:
        raise HTTPException(exc.status, exc.message) from None
    return encoding, protocol


async def _answer(upload: UploadPackRequest) -> Response:
    try:
        answer = await upload_pack(upload)
    except GitHttpError as exc:
        raise HTTPException(exc.status, exc.message) from None
    return StreamingResponse(answer.body, status_code=answer.status, headers=dict(answer.headers))


@router.get("/{name}.git/info/refs")
async def info_refs(
    request: Request, runtime: ScaffoldDep, name: str, service: str = ""
) -> Response:
    """Advertise the refs of a template repository to a fetching git client."""
    if service == RECEIVE_PACK:
        raise HTTPException(403, _READ_ONLY)
    if service != UPLOAD_PACK:
        raise HTTPException(
            400, f"Only smart HTTP fetches are served: ask with ?service={UPLOAD_PACK}."
        )
    _, protocol = _git_headers(request)
    repository = await _repository(runtime, name)
    return await _answer(UploadPackRequest(repository, advertisement=True, protocol=protocol))


@router.post("/{name}.git/git-upload-pack")
async def git_upload_pack(request: Request, runtime: ScaffoldDep, name: str) -> Response:
    """Send a fetching git client the objects it asks for."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != REQUEST_MEDIA_TYPE:
        raise HTTPException(415, f"A {UPLOAD_PACK} request is sent as {REQUEST_MEDIA_TYPE}.")
    encoding, protocol = _git_headers(request)
    repository = await _repository(runtime, name)
    # Bounded by PORTAL_MAX_BODY_BYTES: the app's body limit answers 413 past it, whether
    # the length is declared or the body is sent in chunks.
    body = await request.body()
    return await _answer(UploadPackRequest(repository, False, body, encoding, protocol))


@router.post("/{name}.git/git-receive-pack")
async def git_receive_pack(name: str) -> Response:
    """Refuse every push: the template repositories are published by the portal alone."""
    raise HTTPException(403, _READ_ONLY)
