"""The request body limit (``PORTAL_MAX_BODY_BYTES``), as pure ASGI middleware.

A declared ``Content-Length`` over the limit is refused before the app runs; a body sent
in chunks (no length, or a lying one) is counted as it streams and refused at the first
byte over. FastAPI's own ``max_body_size`` answers a bare ``Content Too Large`` as plain
text from outside the app; this one says what the limit is and answers like every other
refusal (JSON for the API, a page for browsers), which is what the OpenAPI document declares.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.ui.refusal import refusal

# Not str.isdigit: it is True for "²", which int() refuses.
_DIGITS = re.compile(r"[0-9]+")


class BodyTooLarge(HTTPException):
    """Raised while reading a body that grows past the limit (an HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit))


def too_large(limit: int) -> str:
    """Return the message of a refused body."""
    return (
        f"The request body is larger than the portal's limit of {limit} bytes "
        "(PORTAL_MAX_BODY_BYTES)."
    )


class BodyLimitMiddleware:
    """Refuses request bodies larger than ``max_bytes`` with 413.

    ``own_limits`` are paths whose route counts its body against a limit of its own (the
    OTLP receiver: batches of spans are larger than forms, and its refusals must be OTLP
    statuses); their Content-Length is still checked for being one number.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, own_limits: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.own_limits = own_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the body as the app reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = set(Headers(scope=scope).getlist("content-length"))
        if lengths and (len(lengths) > 1 or not all(_DIGITS.fullmatch(value) for value in lengths)):
            reason = "The Content-Length header must be one number of bytes."
            await refusal(scope, 400, reason)(scope, receive, send)
            return
        if scope["path"] in self.own_limits:
            await self.app(scope, receive, send)
            return
        if lengths and int(lengths.pop()) > self.max_bytes:
            await refusal(scope, 413, too_large(self.max_bytes))(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Inside a route FastAPI re-raises it to the app's HTTPException handler;
                    # from a middleware that reads bodies (CSRF) it reaches the except below.
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await refusal(scope, 413, too_large(self.max_bytes))(scope, receive, send)
