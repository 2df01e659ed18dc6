"""The API documentation pages, ``/docs`` (Swagger UI) and ``/redoc``, served without a CDN.

FastAPI's own pages load Swagger UI and ReDoc from a CDN: a blank page in an air-gapped
cluster. Here the assets come from the PyPI package ``fastapi-standalone-docs`` (Swagger
UI and ReDoc's standalone bundle, each folder with its license file; its ReDoc asks for
its logo beside the page, ``/redoc/logo-mini.svg``, instead of a CDN). Only its files are
used: its ``StandaloneDocs`` helper patches FastAPI's functions process-wide.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(str(files("fastapi_standalone_docs") / "static"))
SWAGGER_ASSETS = ASSETS / "swagger"
REDOC_ASSETS = ASSETS / "redoc"
# The portal's own icon, inline like on every page: no request, not even to the portal.
ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Cpath d='M8 1l7 7-7 7-7-7z' fill='%232857d6'/%3E%3C/svg%3E"
)


def add_api_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve Swagger UI at ``docs_url`` and ReDoc at ``redoc_url``, assets beneath each.

    Build the app with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages stay off.
    """
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the API docs need the app's OpenAPI document (openapi_url is None)")
    title = f"{app.title} - API"

    def root(request: Request) -> str:
        # Behind a proxy that strips a prefix, every URL the page loads carries it again.
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        prefix = root(request)
        return get_swagger_ui_html(
            openapi_url=prefix + openapi_url,
            title=f"{title} (Swagger UI)",
            swagger_js_url=f"{prefix}{docs_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}{docs_url}/swagger-ui.css",
            swagger_favicon_url=ICON,
        )

    @app.get(redoc_url, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        prefix = root(request)
        return get_redoc_html(
            openapi_url=prefix + openapi_url,
            title=f"{title} (ReDoc)",
            redoc_js_url=f"{prefix}{redoc_url}/redoc.standalone.js",
            redoc_favicon_url=ICON,
            with_google_fonts=False,
        )

    app.mount(docs_url, StaticFiles(directory=SWAGGER_ASSETS), name="swagger-ui")
    app.mount(redoc_url, StaticFiles(directory=REDOC_ASSETS), name="redoc")
