"""POST /v1/traces: the embedded OTLP/HTTP receiver.

Answers as OTLP/HTTP says: 200 with an ExportTraceServiceResponse in the request's
encoding; 400 with a google.rpc.Status for a malformed request (nothing stored); 413 over
the body limit (the body is counted as it streams, never read whole first); 415 for other
content types or encodings; 401/403 for the token; 503 when the database does not answer
(the exporter retries). While ``PORTAL_TEMPO_URL`` is set traces go to Tempo, not here:
404 (not 503, which exporters retry forever) with a Status saying so.

Who may send: a token with the scope ``traces:write`` whose services include every span's
``service.name``; or, in local auth mode, anyone on loopback (``make run``: services on
the same machine). Behind a proxy (trusted-header mode) every request looks like loopback,
so there a token is always needed.

Decoding and storing run in worker processes (:mod:`portal.traces.ingest_pool`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from portal.auth.identity import Identity
from portal.config import AuthMode, Settings
from portal.http_limits import BodyTooLarge
from portal.traces import otlp
from portal.traces.ingest import Export, Outcome, Sender
from portal.traces.ingest_pool import TraceIngest
from portal.traces.otlp import OtlpError

router = APIRouter(tags=["traces"])
# The OTLP/HTTP path exporters post to; it counts its body against its own limit.
RECEIVER_PATH = "/v1/traces"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_UNAVAILABLE = 14  # google.rpc.Code UNAVAILABLE


def _too_large(limit: int) -> OtlpError:
    return OtlpError(
        413,
        f"the request body is larger than the limit of {limit} bytes "
        "(PORTAL_TRACE_MAX_BODY_BYTES): send smaller batches",
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """Return the body, refusing it as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except BodyTooLarge as exc:  # the portal-wide PORTAL_MAX_BODY_BYTES, counted upstream
        raise OtlpError(413, str(exc.detail)) from exc
    except ClientDisconnect as exc:
        raise OtlpError(400, "the client went away before sending the whole body") from exc
    return b"".join(chunks)


def _sender(request: Request, settings: Settings) -> Sender:
    """Return whose spans the request may carry; refuse a sender without the right (401, 403).

    Which services an export holds is known once it is decoded: the token's services are
    checked against them then (:func:`portal.traces.ingest.check_services`).
    """
    identity: Identity | None = getattr(request.state, "identity", None)
    grant = identity.token if identity is not None else None
    if grant is None:
        host = request.client.host if request.client is not None else ""
        if settings.auth_mode is AuthMode.LOCAL and host in LOOPBACK:
            return Sender(None)
        raise OtlpError(
            401,
            "sending traces needs an API token with the scope traces:write "
            "(Authorization: Bearer pst_...); only loopback senders of a local portal need none",
        )
    token = f"API token {grant.token_id} ({grant.name})"
    if not grant.may_write_traces():
        raise OtlpError(403, f"{token} lacks the scope traces:write")
    return Sender(grant.services, token)


_CODES = {401: otlp.UNAUTHENTICATED, 403: otlp.PERMISSION_DENIED, 404: otlp.NOT_FOUND}
_CODES[503] = _UNAVAILABLE


class RpcStatus(BaseModel):
    """A refused export, as OTLP/HTTP answers it: a ``google.rpc.Status``.

    Shown in its JSON form; a protobuf request gets the same message in protobuf.
    """

    code: int
    message: str
    details: list[dict[str, Any]] = []


def _refusal(description: str) -> dict[str, Any]:
    return {"model": RpcStatus, "description": description}


@router.post(
    RECEIVER_PATH,
    response_class=Response,
    responses={
        200: {"description": "Stored (ExportTraceServiceResponse, protobuf or JSON)"},
        400: _refusal("Malformed export; nothing stored"),
        401: _refusal("No token, and not from loopback"),
        403: _refusal("The token lacks traces:write or a span's service"),
        404: _refusal("Traces go to Tempo (PORTAL_TEMPO_URL)"),
        413: _refusal("Body over PORTAL_TRACE_MAX_BODY_BYTES"),
        415: _refusal("Not application/x-protobuf or application/json"),
        503: _refusal("The database did not answer; retry"),
    },
)
async def receive_traces(request: Request) -> Response:
    """Receive an OTLP/HTTP trace export (protobuf or JSON, maybe gzip) and store its spans."""
    settings: Settings = request.app.state.settings
    trace_ingest: TraceIngest = request.app.state.trace_ingest
    kind = otlp.media_type(request.headers.get("content-type", ""))
    answer_kind = kind if kind in otlp.MEDIA_TYPES else otlp.JSON
    try:
        if settings.tempo_url:
            raise OtlpError(
                404,
                f"this portal reads traces from Tempo ({settings.tempo_url}): "
                "export to Tempo's OTLP receiver (the OTel collector) instead",
            )
        if kind not in otlp.MEDIA_TYPES:
            raise OtlpError(
                415,
                f"Content-Type {kind or '(none)'!r} is not an OTLP encoding: send "
                f"{otlp.PROTOBUF} or {otlp.JSON}",
            )
        sender = _sender(request, settings)
        body = await _read_body(request, settings.trace_max_body_bytes)
        export = Export(body, request.headers.get("content-encoding", ""), kind)
        outcome = await trace_ingest.run(sender, export)
    except OtlpError as exc:
        outcome = Outcome(exc.status, message=exc.message)
    if outcome.status != 200:
        code = _CODES.get(outcome.status, otlp.INVALID_ARGUMENT)
        content = otlp.failure(answer_kind, code, outcome.message)
        return Response(content, status_code=outcome.status, media_type=answer_kind)
    return Response(outcome.body, media_type=kind)
