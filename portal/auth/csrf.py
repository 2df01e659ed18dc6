"""CSRF protection for every unsafe method, as pure ASGI middleware.

Forms carry the session's token in a ``csrf_token`` field, htmx sends it in ``X-CSRF-Token``
(set once on ``<body hx-headers>``). JSON requests are exempt only when they really are
``Content-Type: application/json``: a browser cannot send that cross-site without a CORS
preflight, and the portal answers every preflight with 403. The same holds for git's smart
HTTP requests (``application/x-git-upload-pack-request``), which fetch template repositories.
The OTLP receiver (``/v1/traces``) is exempt whatever its type: it accepts only
``application/x-protobuf`` and ``application/json`` (415 for anything else, so a cross-site
form stores nothing), authenticates by token or loopback, never by the session cookie, and
bounds its own body (an exporter's batch may exceed the form limit).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.http_limits import too_large
from portal.ui.refusal import refusal

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
OTLP_TRACES = "/v1/traces"
HEADER = "x-csrf-token"
FIELD = "csrf_token"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_RELOAD = "Reload the page you came from and try again."
# Types a browser cannot send cross-site without a CORS preflight (refused below): JSON, and
# git's smart HTTP requests to the read-only template repositories (git clients carry no token).
TOKENLESS_MEDIA_TYPES = frozenset(
    {
        "application/json",
        "application/x-git-upload-pack-request",
        "application/x-git-receive-pack-request",
    }
)


class UnreadableFormError(ValueError):
    """Raised when a form body cannot be parsed, with the parser's reason."""


def ensure_token(scope: Scope) -> str:
    """Return the session's CSRF token, creating it on first use."""
    session: dict[str, object] = scope.setdefault("session", {})
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


class CSRFMiddleware:
    """Refuses unsafe requests without the session's token, and every CORS preflight."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        # The body is buffered to find the form's token: bounded here too, whatever runs first.
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token of unsafe requests; pass everything else through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        expected = ensure_token(scope)
        method = scope["method"]
        headers = Headers(scope=scope)
        if method == "OPTIONS" and "access-control-request-method" in headers:
            reason = "Cross-origin requests are not allowed."
            await refusal(scope, 403, reason)(scope, receive, send)
            return
        if method not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type in TOKENLESS_MEDIA_TYPES or scope["path"].rstrip("/") == OTLP_TRACES:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await refusal(scope, 413, too_large(self.max_body_bytes))(scope, receive, send)
            return
        try:
            sent = headers.get(HEADER) or await _form_token(scope, media_type, body)
        except UnreadableFormError as exc:
            await refusal(scope, 400, f"The form could not be read: {exc}")(scope, receive, send)
            return
        # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
        if not sent or not hmac.compare_digest(_bytes(sent), _bytes(expected)):
            reason = "The request did not carry the portal's CSRF token (expired or forged form)."
            await refusal(scope, 403, reason, _RELOAD)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _form_token(scope: Scope, media_type: str, body: bytes) -> str | None:
    if media_type == "application/x-www-form-urlencoded":
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(FIELD)
        return values[0] if values else None
    if media_type == "multipart/form-data":
        # Starlette raises MultiPartException, or HTTPException(400) when an app is in the
        # scope; either way out here, outside the exception handlers, it would be a 500.
        try:
            async with Request(scope, _replay(body)).form() as form:
                value = form.get(FIELD)
        except (MultiPartException, HTTPException) as exc:
            raise UnreadableFormError(_parser_reason(exc)) from exc
        if not _closed(scope, body):
            raise UnreadableFormError("the multipart body ends before its closing boundary")
        return value if isinstance(value, str) else None
    return None


def _parser_reason(exc: BaseException) -> str:
    """Return Starlette's message and, when there is one, the multipart parser's own."""
    reasons: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, MultiPartException):
            text = current.message
        elif isinstance(current, HTTPException):
            text = str(current.detail)
        else:  # only the parser's own errors say something about the body
            text = str(current) if isinstance(current, FormParserError) else ""
        if text and text not in reasons:
            reasons.append(text)
        current = current.__cause__ or current.__context__
    if not reasons:
        return "the form is malformed"
    return reasons[0] + (f" ({reasons[-1]})" if len(reasons) > 1 else "")


def _closed(scope: Scope, body: bytes) -> bool:
    """Return True when a multipart body has its close delimiter (a truncated one has not)."""
    boundary = parse_options_header(Headers(scope=scope).get("content-type", ""))[1]
    marker = boundary.get(b"boundary", b"")
    return isinstance(marker, bytes) and b"--" + marker + b"--" in body


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _replay(body: bytes, then: Receive | None = None) -> Callable[[], Awaitable[Message]]:
    """Hand the already-read body to the app once, then pass on the client's own messages."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then() if then is not None else {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
