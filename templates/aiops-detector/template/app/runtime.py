"""What the routes share while the app runs: settings, models, Prometheus, clock, remediation.

Also what is served (:mod:`.serving`) and the model registry (:mod:`.versioning`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from .prometheus import RangeSource
from .proposals import Remediations
from .recent import RecentScores
from .registry import Registry
from .serving import ServingState
from .settings import Settings
from .versioning import Versioning

Clock = Callable[[], datetime]


@dataclasses.dataclass
class Runtime:
    """The started service: created by the lifespan, gone when it ends."""

    settings: Settings
    registry: Registry
    prometheus: RangeSource
    clock: Clock
    remediations: Remediations
    serving: ServingState
    # The model registry (None without MLFLOW_TRACKING_URI: nothing logged, nothing pinned).
    versioning: Versioning | None = None
    recent: RecentScores = dataclasses.field(default_factory=RecentScores)
    # Training is CPU-bound: one at a time per replica, the others wait their turn.
    training: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


def started(request: Request) -> Runtime:
    """Return the runtime of the started app (a FastAPI dependency of the API routes)."""
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("the service is not started")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(started)]
