"""The SLO area of one app: its Prometheus, and the briefly cached SLO index and snapshot.

The SLO index (spec files from disk and git, owners from the database) is cached for
:data:`SLO_INDEX_SECONDS`; the live snapshot (the overview's fixed queries) for
:data:`SNAPSHOT_SECONDS`, failures included, so a down Prometheus costs one timeout per
period instead of one per request. Concurrent requests for an expired value wait for the
one refresh in progress instead of each starting their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Generic, TypeVar

from sqlalchemy import Engine

from portal.config import Settings
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.prometheus import Prometheus, PrometheusClient, PrometheusError
from portal.slo.burn import (
    DEFAULT_ALERT_WINDOWS,
    Snapshot,
    alert_windows,
    fetch_snapshot,
    fetch_windows,
)
from portal.slo.charts import DEFAULT_RANGE
from portal.slo.coverage import DEFAULT_RANGE_MS
from portal.slo.detail import Detail, build_detail
from portal.slo.overview import Overview, SLOStatus, build_overview, status_of
from portal.slo.store import SLOIndex, build_slo_index

SLO_INDEX_SECONDS = 30.0
SNAPSHOT_SECONDS = 5.0
REFRESH_SECONDS = 15
"""How often the overview asks for fresh numbers (htmx polling)."""

T = TypeVar("T")


class Cached(Generic[T]):
    """A value recomputed by ``load`` once it is older than ``seconds``."""

    def __init__(self, load: Callable[[], T], seconds: float) -> None:
        """Cache what ``load`` returns for ``seconds``."""
        self.load = load
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded_at = -float("inf")
        self._refreshing = False

    def _expired(self) -> bool:
        return self._value is None or time.monotonic() - self._loaded_at >= self.seconds

    def get(self) -> T:
        """Return the cached value, loading it when missing or expired."""
        with self._lock:
            value = self._value
            if value is None or self._expired():
                value = self._value = self.load()
                self._loaded_at = time.monotonic()
            return value

    def peek(self) -> T | None:
        """Return the last value (None if none yet) without loading anything."""
        with self._lock:
            return self._value

    def get_nowait(self) -> T | None:
        """Return the last value (None if none yet) and refresh it in the background if stale."""
        with self._lock:
            value = self._value
            if self._expired() and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh, name="slo-cache", daemon=True).start()
        return value

    def _refresh(self) -> None:
        try:
            self.get()
        finally:
            with self._lock:
                self._refreshing = False

    def clear(self) -> None:
        """Forget the value: the next ``get`` loads it again."""
        with self._lock:
            self._value = None


class SLORuntime:
    """What the SLO routes use: the SLO index, the live snapshot and page models."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        gitops: Callable[[], GitOpsRepo] | None = None,
        prometheus: Prometheus | None = None,
    ) -> None:
        """Use ``prometheus``, else a client of ``PORTAL_PROMETHEUS_URL`` when it is set."""
        self.settings = settings
        self.gitops = gitops
        if prometheus is None and settings.prometheus_url:
            prometheus = PrometheusClient(
                settings.prometheus_url, timeout=settings.prometheus_timeout_seconds
            )
        self._prometheus = prometheus
        self.slo_index_cache: Cached[SLOIndex] = Cached(
            lambda: build_slo_index(settings.slo_paths, gitops=gitops, engine=engine),
            SLO_INDEX_SECONDS,
        )
        self.snapshot_cache: Cached[Snapshot] = Cached(
            lambda: fetch_snapshot(self._prometheus, self.windows(), self.coverage_range_ms()),
            SNAPSHOT_SECONDS,
        )

    @property
    def prometheus(self) -> Prometheus | None:
        """The Prometheus queried, None when none is configured."""
        return self._prometheus

    @prometheus.setter
    def prometheus(self, value: Prometheus | None) -> None:
        self._prometheus = value
        self.snapshot_cache.clear()

    def windows(self) -> set[str]:
        """Return the windows of every alert condition (and shown burn) of any known SLO.

        Uses the SLO index already loaded (pages load it before the snapshot), so that a
        snapshot refreshed in the background never reads git or the database.
        """
        found = set(DEFAULT_ALERT_WINDOWS)
        slo_index = self.slo_index_cache.peek()
        for entry in slo_index.entries if slo_index else ():
            found.update(alert_windows(entry.slo.windows))  # the shown ones are among them
        return found

    def coverage_range_ms(self) -> int:
        """Return how far back the coverage query looks: the longest known period (30 days)."""
        slo_index = self.slo_index_cache.peek()
        periods = [entry.slo.windows.period_ms for entry in slo_index.entries] if slo_index else []
        return max([DEFAULT_RANGE_MS, *periods])

    def slo_index(self) -> SLOIndex:
        """Return the SLOs the portal knows (cached)."""
        return self.slo_index_cache.get()

    def snapshot(self) -> Snapshot:
        """Return Prometheus' current numbers for every SLO (cached)."""
        return self.snapshot_cache.get()

    def overview(self, team: str = "", service: str = "") -> Overview:
        """Build the overview page's model."""
        url = self._prometheus.url if self._prometheus else None
        return build_overview(
            self.slo_index(), self.snapshot(), team=team, service=service, prometheus_url=url
        )

    def status(self, sloth_id: str) -> SLOStatus | None:
        """One SLO's status, from its spec and/or Prometheus; None when neither knows it."""
        entry = self.slo_index().get(sloth_id)
        live = self.snapshot().by_id.get(sloth_id)
        if entry is None and live is None:
            return None
        return status_of(entry, live)

    def detail(self, sloth_id: str, range_key: str = DEFAULT_RANGE) -> Detail | None:
        """Build the detail page's model; None for an unknown SLO."""
        status = self.status(sloth_id)
        if status is None:
            return None
        prometheus = self._prometheus if self.snapshot().available else None
        if prometheus is not None and status.live is not None:
            # The snapshot has the alert windows; this adds the period's. The snapshot's
            # values win, so the detail page judges the SLO exactly as the overview did.
            try:
                windows = fetch_windows(prometheus, sloth_id)
            except PrometheusError:
                windows = {}
            live = replace(status.live, sli_errors={**windows, **status.live.sli_errors})
            status = status_of(status.entry, live)
        return build_detail(status, prometheus, range_key)

    def for_service(self, service: str, *, wait: bool = True) -> list[SLOStatus]:
        """Return the SLOs of one service with their live state, most urgent first.

        With ``wait=False`` (the catalog's entity page) the last snapshot is used and a
        stale one is refreshed in the background, so a slow Prometheus never slows the page.
        """
        snapshot = self.snapshot() if wait else self.snapshot_cache.get_nowait()
        by_id = snapshot.by_id if snapshot is not None else {}
        rows = [
            status_of(entry, by_id.get(entry.sloth_id))
            for entry in self.slo_index().for_service(service)
        ]
        return sorted(rows, key=lambda row: row.urgency)

    def budget_remaining(self, service: str) -> float | None:
        """Return the lowest budget remaining among a service's SLOs (for error-budget policies).

        Only SLOs with enough data count (see :mod:`portal.slo.coverage`): a policy must not
        freeze a service on its first hour of data, nor clear it on that.
        """
        return lowest_budget(self.for_service(service))


def lowest_budget(rows: Iterable[SLOStatus]) -> float | None:
    """Return the lowest error budget left among ``rows`` with enough data (None: none has)."""
    return min(
        (
            row.budget_remaining
            for row in rows
            if row.budget_remaining is not None and row.coverage.enough
        ),
        default=None,
    )
