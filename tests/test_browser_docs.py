"""The API documentation pages work in an air-gapped cluster: no asset comes from a CDN.

FastAPI's own ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a CDN, a blank page
without the internet. The portal serves them from a package: in Chromium, with every
request that is not for the portal aborted (and recorded), both pages must render.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, Response, Route, expect

from portal.app import create_app
from portal.config import Settings
from tests.browser_server import chromium, live_server, require_chromium

RENDER_TIMEOUT_MS = 30_000


def docs_settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=None,
        catalog_paths=[],
        secret_key="docs-test-secret",
        run_worker=False,
    )


def test_the_docs_pages_load_only_the_portals_own_assets(tmp_path: Path) -> None:
    with TestClient(create_app(docs_settings(tmp_path / "var"))) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            sources = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert sources, html
            for source in sources:
                assert source.startswith(("/", "data:")), f"{page} loads {source}"
                if source.startswith("/"):
                    assert client.get(source).status_code == 200, source
        # The third-party licenses are served beside the files they cover.
        assert "Apache License" in client.get("/docs/LICENSE").text
        assert "ReDoc" in client.get("/redoc/redoc.standalone.js.LICENSE.txt").text
        assert client.get("/redoc/logo-mini.svg").headers["content-type"] == "image/svg+xml"
        # The pages are not API operations.
        paths = client.get("/openapi.json").json()["paths"]
        assert not {"/docs", "/redoc"} & set(paths)


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal on loopback (no catalog needed: the docs describe the API)."""
    require_chromium()
    with live_server(docs_settings(tmp_path_factory.mktemp("docs") / "var")) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium for this module's tests."""
    with chromium() as launched:
        yield launched


@dataclass
class Offline:
    """A tab with the network blocked, and what it tried to reach or could not load."""

    page: Page
    attempted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def offline_tab(browser: Browser, portal_url: str) -> Iterator[Offline]:
    """A fresh context whose every request not for 127.0.0.1 is recorded and aborted."""
    context = browser.new_context(base_url=portal_url)
    tab = Offline(context.new_page())

    def block(route: Route) -> None:
        tab.attempted.append(route.request.url)
        route.abort()

    def on_response(response: Response) -> None:
        if response.status >= 400:
            tab.failed.append(f"{response.status} {response.url}")

    context.route(lambda url: urlsplit(url).hostname != "127.0.0.1", block)
    tab.page.on("response", on_response)
    tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.page.on(
        "console",
        lambda message: tab.errors.append(message.text) if message.type == "error" else None,
    )
    try:
        yield tab
    finally:
        context.close()


@pytest.mark.browser
def test_swagger_ui_renders_with_the_network_blocked(browser: Browser, portal_url: str) -> None:
    with offline_tab(browser, portal_url) as tab:
        tab.page.goto("/docs")
        entities = tab.page.locator(
            ".opblock-get .opblock-summary-path[data-path='/api/catalog/entities']"
        )
        expect(entities).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        expect(tab.page.locator(".info .title")).to_contain_text("Platform portal")
        tab.page.wait_for_load_state("networkidle")
        assert tab.attempted == []
        assert tab.failed == []
        assert tab.errors == []


@pytest.mark.browser
def test_redoc_renders_with_the_network_blocked(browser: Browser, portal_url: str) -> None:
    with offline_tab(browser, portal_url) as tab:
        tab.page.goto("/redoc")
        expect(tab.page.locator("h1")).to_contain_text("Platform portal", timeout=RENDER_TIMEOUT_MS)
        # An operation of the catalog API, in the side menu and in the body.
        operation = tab.page.get_by_role("menuitem").filter(has_text="Api List Entities")
        expect(operation.first).to_be_visible()
        expect(tab.page.get_by_text("/api/catalog/entities").first).to_be_attached()
        tab.page.wait_for_load_state("networkidle")
        assert tab.attempted == []
        assert tab.failed == []
        assert tab.errors == []
