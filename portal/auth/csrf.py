"""CSRF protection for every unsafe method, as pure ASGI middleware.

Forms carry the session's token in a ``csrf_token`` field, htmx sends it in ``X-CSRF-Token``
(set once on ``<body hx-headers>``). JSON requests are exempt only when they really are
``Content-Type: application/json``: a browser cannot send that cross-site without a CORS
preflight, and the portal answers every preflight with 403.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
HEADER = "x-csrf-token"
FIELD = "csrf_token"
MAX_FORM_BYTES = 1024 * 1024

_FORBIDDEN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Request refused</title><link rel="stylesheet" href="/static/portal.css"></head>
<body><main class="container narrow"><h1>Request refused</h1>
<p>{reason}</p><p>Reload the page you came from and try again.</p>
<p><a href="/">Back to the portal</a></p></main></body></html>"""


def ensure_token(scope: Scope) -> str:
    """Return the session's CSRF token, creating it on first use."""
    session: dict[str, object] = scope.setdefault("session", {})
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _refuse(scope: Scope, reason: str) -> Response:
    api = str(scope.get("path", "")).startswith("/api/")
    if api or Headers(scope=scope).get("accept", "").startswith("application/json"):
        return JSONResponse({"detail": reason}, status_code=403)
    return HTMLResponse(_FORBIDDEN_PAGE.format(reason=reason), status_code=403)


class CSRFMiddleware:
    """Refuses unsafe requests without the session's token, and every CORS preflight."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token of unsafe requests; pass everything else through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        expected = ensure_token(scope)
        method = scope["method"]
        headers = Headers(scope=scope)
        if method == "OPTIONS" and "access-control-request-method" in headers:
            await _refuse(scope, "Cross-origin requests are not allowed.")(scope, receive, send)
            return
        if method not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "application/json":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await _refuse(scope, "The request body is too large.")(scope, receive, send)
            return
        sent = headers.get(HEADER) or await _form_token(scope, media_type, body)
        if not sent or not hmac.compare_digest(sent, expected):
            reason = "The request did not carry the portal's CSRF token (expired or forged form)."
            await _refuse(scope, reason)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
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
        form = await Request(scope, _replay(body)).form()
        value = form.get(FIELD)
        return value if isinstance(value, str) else None
    return None


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
