"""The portal's single Jinja environment and the page-vs-fragment rule.

A request gets the full page unless htmx asked for a part of it: ``HX-Request`` is set and
the request is neither boosted nor a history restore. Then only the named block of the same
template is rendered. Responses say ``Vary: HX-Request`` so caches keep both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from jinja2_fragments import render_block

from portal.deps import app_jinja, app_settings

PORTAL_DIR = Path(__file__).resolve().parent.parent
STATIC_DIR = Path(__file__).resolve().parent / "static"
DOMAINS = (
    "catalog",
    "auth",
    "ui",
    "scaffold",
    "review",
    "slo",
    "home",
    "cost",
    "models",
    "traces",
    "fleet",
)

NAVIGATION = [
    ("catalog", "Catalog", "/catalog"),
    ("create", "Create", "/create"),
    ("reviews", "Reviews", "/reviews"),
    ("slos", "SLOs", "/slos"),
    ("cost", "Cost", "/cost"),
    ("traces", "Traces", "/traces"),
    ("models", "Models", "/models"),
]


def build_environment() -> Environment:
    """Create the environment: ``<domain>/<file>.html`` loads ``portal/<domain>/pages/<file>``."""
    loaders = {domain: FileSystemLoader(PORTAL_DIR / domain / "pages") for domain in DOMAINS}
    environment = Environment(
        loader=ChoiceLoader([PrefixLoader(loaders), FileSystemLoader(PORTAL_DIR / "ui" / "pages")]),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["navigation"] = NAVIGATION
    environment.filters["urlencode_params"] = lambda params: urlencode(params)
    return environment


def wants_fragment(request: Request) -> bool:
    """Return True when htmx asked for a fragment (not boosted, not a history restore)."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    fragment: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template`` fully, or only its ``fragment`` block when htmx asked for it."""
    environment = app_jinja(request)
    full_context = {**base_context(request), **context}
    if fragment and wants_fragment(request):
        html = render_block(environment, template, fragment, **full_context)
    else:
        html = environment.get_template(template).render(**full_context)
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Vary"] = "HX-Request"
    return response


def error_page(request: Request, heading: str, message: str, status_code: int) -> HTMLResponse:
    """Render the error page: a heading and a sentence saying what to do."""
    context = {"heading": heading, "message": message}
    return page(request, "ui/error.html", context, status_code=status_code)


def base_context(request: Request) -> dict[str, Any]:
    """Return what every template needs: the request, the identity and the CSRF token.

    ``is_admin`` tells the header to show the platform-admin badge (``PORTAL_ADMIN_GROUP``).
    """
    settings = app_settings(request)
    identity = getattr(request.state, "identity", None)
    return {
        "request": request,
        "identity": identity,
        "is_admin": identity is not None and identity.is_admin(settings.admin_group),
        "admin_group": settings.admin_group,
        "csrf_token": request.scope.get("session", {}).get("csrf", ""),
        "auth_mode": settings.auth_mode.value,
    }
