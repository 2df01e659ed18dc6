"""A real portal served by uvicorn on a loopback port, in a background thread, for browser tests.

Also a pytest plugin (``pytest_plugins`` in tests/conftest.py): the ``browser`` and ``page``
fixtures every browser test module shares; each module brings its own ``portal_url``.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect, sync_playwright

from portal.app import create_app
from portal.cli import initialise
from portal.config import AuthMode, Settings
from tests.conftest import REPO, require_tool

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT = 30.0


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/healthz", headers={"Accept": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _bound_port(server: uvicorn.Server) -> int:
    for listener in server.servers:
        for sock in listener.sockets:
            port = sock.getsockname()[1]
            if isinstance(port, int):
                return port
    raise RuntimeError("uvicorn started without a listening socket")


@contextmanager
def live_server(settings: Settings, app: FastAPI | None = None) -> Iterator[str]:
    """Serve ``app`` (default ``create_app(settings)``) on 127.0.0.1 (a free port).

    Yields the base URL.

    The server runs its own event loop in a thread; on exit it is asked to stop through
    ``should_exit`` and the thread is joined, so no socket or loop outlives the block.
    """
    config = uvicorn.Config(
        app if app is not None else create_app(settings),
        host="127.0.0.1",
        port=0,  # the OS picks a free port; read back from the listening socket
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="portal-live-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the portal server stopped while starting (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the portal server did not start within {START_TIMEOUT}s")
            time.sleep(0.02)
        port = _bound_port(server)
        while not _healthy(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"/healthz did not answer 200 within {START_TIMEOUT}s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT)
        if thread.is_alive():  # pragma: no cover - only when shutdown hangs
            raise RuntimeError("the portal server did not shut down")


def require_chromium() -> Path:
    """Debian's Chromium; skip (fail in CI) when it is not installed."""
    return require_tool("chromium")


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def isolated_page(browser: Browser, portal_url: str) -> Iterator[Page]:
    """A fresh context (no cookies) whose requests never leave the test server.

    Any JavaScript error or console error on the page fails the test when it ends.
    """
    context = browser.new_context(base_url=portal_url)
    context.route(lambda url: not url.startswith(portal_url), lambda route: route.abort())
    errors: list[str] = []
    tab = context.new_page()
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], f"the page reported errors: {errors}"


def initialised_settings(
    folder: Path, secret: str, *, gitops: bool = False, **overrides: Any
) -> Settings:
    """Settings of a test portal in ``folder / "var"``, initialised: local sign-in, SQLite.

    Skips first when Chromium is missing, so nothing is built for tests that cannot run.
    The catalog is the repo's unless ``catalog_paths`` is among ``overrides``. With ``gitops``
    the portal gets the repo's GitOps seed (as a local remote) and templates, so services can
    be created. The import must report no problems (but remote placeholders, never fetched)
    and at least one User to sign in as.
    """
    require_chromium()
    fields: dict[str, Any] = {
        "data_dir": folder / "var",
        "database_url": None,  # SQLite in the data dir, whatever the environment says
        "auth_mode": AuthMode.LOCAL,
        "catalog_paths": [str(REPO / "catalog")],
        "secret_key": secret,
    }
    if gitops:
        fields |= {"gitops_seed_dir": REPO / "gitops-repo", "templates_dir": REPO / "templates"}
    settings = Settings(**(fields | overrides))
    report = initialise(settings, gitops=gitops)
    assert report is not None, report
    # Backstage's examples define three APIs by remote $text URLs, never fetched: reported.
    unexpected = [p for p in report.problems if "remote placeholders" not in p.message]
    assert unexpected == [], report
    assert report.by_kind.get("User", 0) > 0, "the catalog has no User to sign in as"
    return settings


def sign_in(page: Page, user: str, then: str) -> None:
    """Sign in locally as catalog User ``user`` and land on the path ``then``."""
    page.goto(f"/auth/sign-in?next={then}")
    page.locator(f'button[data-user="user:default/{user}"]').click()
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))
    # The URL changes when the page commits, before its deferred scripts (htmx) ran: a test
    # acting then races them (seen on a loaded CI machine), so wait for the load event.
    page.wait_for_load_state("load")


def sign_out(page: Page) -> None:
    """Sign out through the header's button."""
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, one for each test module."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, portal_url: str) -> Iterator[Page]:
    """A fresh, isolated tab (not signed in) on the test module's live portal."""
    with isolated_page(browser, portal_url) as tab:
        yield tab
