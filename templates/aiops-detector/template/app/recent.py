"""The points ``POST /detect`` last scored for each inline series, kept for the page.

Queries are read again from Prometheus when the page asks; inline series have no other
source, so the page charts what was last sent. Only the newest :data:`MAX_RECENT_POINTS`
points of each series are kept, in memory (a restart forgets them).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from datetime import datetime

from .detector import Scores

MAX_RECENT_POINTS = 3000


@dataclasses.dataclass(frozen=True)
class Recent:
    """The scores of one inline series' last detection, and when it was asked."""

    labels: Mapping[str, str]
    scores: Scores
    at: datetime


class RecentScores:
    """The last scored points of each inline series, safe to use from the request threads."""

    def __init__(self, limit: int = MAX_RECENT_POINTS) -> None:
        self.limit = limit
        self._items: dict[str, Recent] = {}
        self._lock = threading.Lock()

    def put(self, name: str, labels: Mapping[str, str], scores: Scores, at: datetime) -> None:
        """Keep the newest points of a detection of the inline series ``name``."""
        recent = Recent(dict(labels), scores.newest(self.limit), at)
        with self._lock:
            self._items[name] = recent

    def get(self, name: str) -> Recent | None:
        """Return what was last scored for ``name``, if anything."""
        with self._lock:
            return self._items.get(name)
