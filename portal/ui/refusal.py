"""Answers for requests refused before they reach a route (CSRF, identity headers, body size).

Middleware runs outside the app's exception handlers and before the session's page context
exists, so it answers by itself: ``{"detail": reason}`` for the JSON API and for clients
that ask for JSON, a small self-contained page for browsers.
"""

from __future__ import annotations

from html import escape

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Scope

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Request refused</title><link rel="stylesheet" href="/static/portal.css"></head>
<body><main class="container narrow"><h1>Request refused</h1>
<p>{reason}</p>{hint}
<p><a href="/">Back to the portal</a></p></main></body></html>"""


def wants_json(scope: Scope) -> bool:
    """Return True for API paths and for clients that do not ask for HTML first."""
    if str(scope.get("path", "")).startswith("/api/"):
        return True
    accept = Headers(scope=scope).get("accept", "")
    return "text/html" not in accept


def refusal(scope: Scope, status_code: int, reason: str, hint: str = "") -> Response:
    """Return the response refusing the request of ``scope`` with ``status_code``."""
    if wants_json(scope):
        return JSONResponse({"detail": reason}, status_code=status_code)
    page = _PAGE.format(reason=escape(reason), hint=f"<p>{escape(hint)}</p>" if hint else "")
    return HTMLResponse(page, status_code=status_code)
