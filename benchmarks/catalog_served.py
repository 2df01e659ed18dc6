"""The catalog benchmark's pages and API over real HTTP: uvicorn in a subprocess.

The in-process rows of ``benchmarks/catalog.py`` go through Starlette's TestClient. A
browser or a script meets the portal through a socket and uvicorn's HTTP parser instead:
these rows serve the same database with ``uvicorn --factory
benchmarks.catalog_served:served_app``, the app as ``portal serve`` builds it (the garbage
collector tuned, :mod:`portal.serving`), and time each GET until its whole body arrived,
on a new connection each, as ``curl`` makes them.
"""

from __future__ import annotations

from fastapi import FastAPI

from benchmarks.served import get
from portal.config import Settings
from portal.serving import app_for_serving

WARM_UP = 10


def served_app() -> FastAPI:
    """The app uvicorn serves (``--factory``) as ``portal serve`` builds it, from ``PORTAL_*``."""
    return app_for_serving(Settings())


def environment(settings: Settings) -> dict[str, str]:
    """The ``PORTAL_*`` environment that makes :func:`served_app` serve what ``settings`` does."""
    env = {
        "PORTAL_DATA_DIR": str(settings.data_dir),
        "PORTAL_CATALOG_PATHS": ",".join(settings.catalog_paths),
        "PORTAL_SECRET_KEY": settings.resolved_secret_key(),
        "PORTAL_RUN_WORKER": "true" if settings.run_worker else "false",
    }
    if settings.database_url:
        env["PORTAL_DATABASE_URL"] = settings.database_url
    return env


def served_latencies(port: int, paths: list[str]) -> list[float]:
    """GET each of ``paths`` after a few untimed ones; return the milliseconds of each."""
    for path in paths[:WARM_UP]:
        get(port, path)
    return [get(port, path)[0] * 1000 for path in paths]
