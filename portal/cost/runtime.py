"""What the cost routes use: the estimate of main and the measured days, both cached.

``CostRuntime`` holds the manifest estimate of GitOps ``main`` (rebuilt at most once a
minute) and the measured sources, OpenCost first and Prometheus second (either may be
None). Every window, page and service reads one snapshot of measured days, priced with
each environment's price sheet, so the number of source calls does not grow with the
number of services or requests.

The snapshot is refreshed in the background (:mod:`portal.cost.refresh`): a request never
waits for a source. Before a snapshot covers a window, its pages show the estimate and
each source says "measured figures are loading (started HH:MM:SS UTC)"; later the last
snapshot is served while the next one loads, and after the first load a refresh asks
only for the days not held (yesterday and today). A source or a refresh that fails keeps
the last figures, and says so, with its time, among ``index().problems``. The app's
shutdown calls ``stop()``; tests and scripts load synchronously with ``refresh_now()``.

For the service page (``/cost/{service}``):

- ``runtime.service_days(service)`` is the service's priced ``DayCost`` list (every
  workload, oldest first) from the source its figures come from, ``[]`` when no source
  measured it; ``runtime.measured().source_of(service)`` names that source.
- ``runtime.prices(environment)`` is that environment's price sheet (OpenCost's defaults
  when it has none); it raises ``PriceSheetError`` when the sheets cannot be read, since
  a default price in place of a broken sheet would be a wrong number.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from sqlalchemy import Engine

from portal.clock import utcnow
from portal.config import Settings
from portal.cost.estimate import ESTIMATE_SECONDS, CostIndex, build_cost_index
from portal.cost.figures import Computed, compute
from portal.cost.measured import DayCost, Measured, gather
from portal.cost.model import (
    DEFAULT_PRICES,
    PRICES_DIR,
    Prices,
    PriceSheetError,
    environment_prices,
    price_sheet_path,
)
from portal.cost.refresh import (
    MEASURED_SECONDS,
    STOP_SECONDS,
    MeasuredRefresh,
    Snapshot,
    SourceDays,
)
from portal.cost.windows import history_start
from portal.integrations.cost_metrics import CostSource, UsageMetrics
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.opencost import OpenCostCostSource
from portal.integrations.prometheus import PrometheusClient
from portal.integrations.prometheus_cost import PrometheusCostSource
from portal.slo.runtime import Cached
from portal.slo.store import component_owners

PriceSheets = Callable[[], Mapping[str, Prices]]


def price_sheets_on_main(gitops: Callable[[], GitOpsRepo]) -> dict[str, Prices]:
    """Read every environment's price sheet on main; raise ``PriceSheetError``."""
    try:
        repo = gitops()
        repo.refresh()
        commit = repo.resolve(repo.main)
        paths = set(repo.list_files(commit, PRICES_DIR))
        sheets = {}
        for path in sorted(paths):
            environment = path.removeprefix(f"{PRICES_DIR}/").removesuffix(".yaml")
            if "/" not in environment and price_sheet_path(environment) == path:
                sheets[environment] = environment_prices(
                    environment, lambda wanted: repo.read_file(commit, wanted)
                )
    except (GitError, OSError) as error:
        raise PriceSheetError(
            f"price sheets: GitOps repository cannot be read ({error})"
        ) from error
    return sheets


def _sheets_of(gitops: Callable[[], GitOpsRepo] | None) -> PriceSheets:
    def read() -> Mapping[str, Prices]:
        return {} if gitops is None else price_sheets_on_main(gitops)

    return read


@dataclass(frozen=True)
class CostView:
    """What one page reads: the estimate, the measured days, their owners, the day."""

    index: CostIndex
    measured: Measured
    owners: Mapping[str, str]
    today: date


class CostRuntime:
    """The estimate of main (cached a minute) and the measured days (refreshed behind)."""

    def __init__(
        self,
        gitops: Callable[[], GitOpsRepo] | None,
        engine: Engine | None = None,
        *,
        opencost: CostSource | None = None,
        prometheus: CostSource | None = None,
        usage_metrics: UsageMetrics | None = None,
        prices: PriceSheets | None = None,
        clock: Callable[[], datetime] = utcnow,
        measured_seconds: float = MEASURED_SECONDS,
    ) -> None:
        """Estimate what ``gitops`` opens, measure with the sources that are not None.

        ``usage_metrics`` (Prometheus' p95 usage, token counts) is kept for the service page.

        ``prices`` returns the price sheet of each environment that has one; by default
        they are read from main (``cost/prices/<env>.yaml``), and every other
        environment is priced at OpenCost's defaults.
        """
        self.cache: Cached[CostIndex] = Cached(
            lambda: build_cost_index(gitops, engine), ESTIMATE_SECONDS
        )
        self.sources: list[CostSource] = [s for s in (opencost, prometheus) if s is not None]
        self.usage_metrics = usage_metrics
        self.engine = engine
        self.clock = clock
        self.measured_seconds = measured_seconds
        self._sheets: PriceSheets = prices or _sheets_of(gitops)
        # Read through ``self`` at each refresh: tests swap the sources and the clock.
        self.refresh = MeasuredRefresh(
            self._load, lambda: self.sources, lambda: self.clock(), measured_seconds
        )
        self._lock = threading.Lock()
        self._annotated: tuple[CostIndex, tuple[str, ...], CostIndex] | None = None
        # The last figures per window, with the estimate and snapshot they were made from.
        self._computed: dict[int, tuple[CostIndex, Snapshot, Computed]] = {}

    def index(self) -> CostIndex:
        """Return the estimate of main (cached), the measured refresh's notes among its problems."""
        base = self.cache.get()
        notes = self.refresh.notes()
        if not notes:
            return base
        with self._lock:  # the same object while nothing changes: ``computed`` keys on it
            kept = self._annotated
            if kept is None or kept[0] is not base or kept[1] != notes:
                kept = (base, notes, replace(base, problems=(*base.problems, *notes)))
                self._annotated = kept
            return kept[2]

    def today(self) -> date:
        """Today's UTC date by the runtime's clock."""
        return self.clock().astimezone(UTC).date()

    def clear(self) -> None:
        """Forget the estimate and the measured days: the next read loads them again."""
        self.cache.clear()
        self.clear_measured()

    def clear_measured(self) -> None:
        """Forget the measured days, held days and price sheets: the next read reloads all."""
        self.refresh.clear()
        with self._lock:
            self._computed.clear()

    def expire(self) -> None:
        """Make the measured snapshot stale (as after five minutes); held days are kept."""
        self.refresh.expire()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no refresh runs; return False when ``timeout`` seconds passed first."""
        return self.refresh.wait(timeout)

    def refresh_now(self, window_days: int = 30) -> None:
        """Refresh the measured days in this thread, covering ``window_days`` (tests, scripts)."""
        today = self.today()
        self.refresh.refresh_now(today, history_start(today, window_days))

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Start no refresh any more; wait up to ``timeout`` for one in flight (shutdown)."""
        self.refresh.stop(timeout)

    def _read_sheets(self) -> tuple[Mapping[str, Prices], str | None]:
        try:
            return dict(self._sheets()), None
        except (PriceSheetError, GitError, OSError) as error:
            return {}, str(error)

    def _load(self, today: date, first: date, sources: list[SourceDays]) -> Snapshot:
        sheets, sheets_error = self._read_sheets()

        def prices(environment: str) -> Prices:
            if sheets_error is not None:
                raise PriceSheetError(sheets_error)
            return sheets.get(environment, DEFAULT_PRICES)

        measured = gather(sources, first, today, prices)
        covered = [s.covers_from for s in sources if s.covers_from is not None]
        measured = replace(measured, first=max([first, *covered]))
        owners = component_owners(self.engine, [s for s in measured.by_service if s])
        notes = tuple(note for s in sources if (note := s.stale_note()))
        return Snapshot(today, self.clock(), measured, sheets, sheets_error, owners, notes)

    def _current(self, window_days: int = 30) -> Snapshot:
        today = self.today()
        return self.refresh.current(today, history_start(today, window_days))

    def view(self, window_days: int = 30) -> CostView:
        """Return the estimate and one snapshot of measured days, owners and its day."""
        snapshot = self._current(window_days)
        return CostView(self.index(), snapshot.measured, snapshot.owners, snapshot.today)

    def computed(self, window_days: int = 30) -> Computed:
        """Every service's and team's figures for a window, recomputed when data changes."""
        snapshot = self._current(window_days)
        index = self.index()
        with self._lock:
            kept = self._computed.get(window_days)
            if kept is not None and kept[0] is index and kept[1] is snapshot:
                return kept[2]
        found = compute(index, snapshot.measured, snapshot.owners, snapshot.today, window_days)
        with self._lock:
            self._computed[window_days] = (index, snapshot, found)
        return found

    def measured(self, window_days: int = 30) -> Measured:
        """Priced days per service covering every figure of a ``window_days`` window."""
        return self._current(window_days).measured

    def owners(self) -> Mapping[str, str]:
        """Return the catalog owner ref of each measured service that has one."""
        return self._current().owners

    def problems(self) -> list[str]:
        """Why measured figures may be missing or older: failed sources, refreshes, sheets."""
        return [*self._current().measured.errors, *self.refresh.notes()]

    def service_days(self, service: str) -> list[DayCost]:
        """``service``'s priced days (every workload, oldest first); [] when not measured."""
        return self.measured().service_days(service)

    def prices(self, environment: str) -> Prices:
        """``environment``'s price sheet; raise ``PriceSheetError`` when sheets are unreadable.

        The last snapshot's sheets; before the first one, read from main now (a local read).
        """
        snapshot = self.refresh.latest()
        if snapshot is None:
            sheets, error = self._read_sheets()
        else:
            sheets, error = snapshot.sheets, snapshot.sheets_error
        if error is not None:
            raise PriceSheetError(error)
        return sheets.get(environment, DEFAULT_PRICES)


def runtime_from_settings(
    settings: Settings, gitops: Callable[[], GitOpsRepo] | None, engine: Engine | None = None
) -> CostRuntime:
    """Build the runtime ``settings`` ask for, with every measured source configured.

    OpenCost when ``PORTAL_OPENCOST_URL`` is set; the Prometheus the SLO pages read
    (``PORTAL_PROMETHEUS_URL``, or the local one ``portal serve`` starts) for measured
    days, p95 usage, token counts and request totals. The measured days are read in the
    background with ``PORTAL_COST_QUERY_TIMEOUT_SECONDS`` per query; the service page's
    queries, which a request waits for, with the SLO pages' timeout.
    """
    timeout = settings.cost_query_timeout_seconds
    opencost = (
        OpenCostCostSource.at(settings.opencost_url, timeout) if settings.opencost_url else None
    )
    prometheus = usage = None
    if settings.prometheus_url:
        label = settings.cost_cluster_label
        days = PrometheusClient(settings.prometheus_url, timeout)
        prometheus = PrometheusCostSource(days, cluster_label=label)
        asked = PrometheusClient(settings.prometheus_url, settings.prometheus_timeout_seconds)
        usage = PrometheusCostSource(asked, cluster_label=label)
    return CostRuntime(
        gitops, engine, opencost=opencost, prometheus=prometheus, usage_metrics=usage
    )
