"""A real portal served by uvicorn on a loopback port, in a background thread, for browser tests."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from portal.app import create_app
from portal.config import Settings

CHROMIUM = "/usr/bin/chromium"
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
