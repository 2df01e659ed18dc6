"""A long-running portal process: the app, and the garbage collector tuned for serving.

CPython 3.11's collector runs its youngest generation every 700 allocations. A page that
builds much, such as the catalog list with its facets at 100,000 entities (650 KB of
HTML), keeps its objects alive across many of those runs, so they are promoted to the
oldest generation, and a full collection follows every six or seven such pages. Each
walked every object start-up made (modules, classes, SQLAlchemy and pydantic metadata)
to free about 30: 110 to 160 ms, the p95 of that page served by uvicorn
(``benchmarks/catalog.py``'s served rows, ``benchmarks/RESULTS.md``).

Only ``portal serve`` (and what benchmarks it) tunes the collector: in a test process,
freezing at every app's start would keep every earlier app's cycles forever.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI

from portal.app import create_app
from portal.config import Settings

# Allocations between two runs of the youngest generation (CPython's default: 700).
YOUNGEST_THRESHOLD = 50_000


def tune_collector() -> None:
    """Freeze what exists now and run the youngest generation less often.

    After ``gc.freeze()`` a full collection walks only what was made since, not the
    imports and the app. With runs every 50,000 allocations, a request's objects mostly
    die before one and are never promoted; cyclic garbage is freed a little later.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_THRESHOLD, middle, oldest)


def app_for_serving(settings: Settings) -> FastAPI:
    """Build the app for a server process that runs until stopped, collector tuned."""
    app = create_app(settings)
    tune_collector()
    return app
