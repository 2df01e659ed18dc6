"""A real portal served by uvicorn on a loopback port, in a background thread, for browser tests."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from portal.app import create_app
from portal.config import Settings
from tests.conftest import require_tool

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
def live_server(settings: Settings) -> Iterator[str]:
    """Serve ``create_app(settings)`` on 127.0.0.1 (a free port) and yield its base URL.

    The server runs its own event loop in a thread; on exit it is asked to stop through
    ``should_exit`` and the thread is joined, so no socket or loop outlives the block.
    """
    config = uvicorn.Config(
        create_app(settings),
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
