"""The service's state: cached data, last good data, models, refreshes and retraining.

One :class:`Monitor` per process. Data is fetched at most once per refresh interval, however
many requests arrive (one refresh at a time; the others wait for it and share its result).
When Open-Meteo fails, the last good data stays in service and says how old it is, and the
next attempt waits ``failure_backoff_seconds`` so a failing API is not hammered. Training
and the number crunching run in a worker thread, never on the event loop.

With a model registry every trained model is also logged there (a failure is a warning and
a counter, never a failed training). With a pinned version the service serves that version
only, once downloaded and verified; what it trains meanwhile is logged as a candidate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import httpx

from . import metrics
from .assessment import Level, Reading, Verdict, judge
from .model_record import ModelRegistry
from .model_store import ModelStore
from .openmeteo import OpenMeteoError, fetch_air_quality
from .pinned import PinError, load_pinned
from .settings import Settings
from .snapshot import Snapshot, build_snapshot, score_readings
from .timeline import Timeline, split_timeline
from .training import NotEnoughDataError, TrainedModels, train_models

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
FRESHNESS_CHECK_SECONDS = 60.0


class TrainingBusyError(RuntimeError):
    """A training is already running."""


class NoDataError(RuntimeError):
    """There is no data yet to work with; the message says why."""


class Monitor:
    """Fetches, caches, assesses and trains for one city."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        store: ModelStore,
        *,
        clock: Clock | None = None,
        registry: ModelRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.registry = registry
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.snapshot: Snapshot | None = None
        self.models: TrainedModels | None = None  # the models served
        self.latest_trained: TrainedModels | None = None  # a candidate while pinned
        self.pin_error: str | None = None
        self.last_error: OpenMeteoError | None = None
        self.last_error_at: datetime | None = None
        self._timeline: Timeline | None = None
        self._retry_after: datetime | None = None
        self._refresh_lock = asyncio.Lock()
        self._train_lock = asyncio.Lock()

    # --- state -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Ready to serve: data and a model are loaded."""
        return self.snapshot is not None and self.models is not None

    @property
    def pinned(self) -> bool:
        """Tell whether the environment pins a registered version (the only one served)."""
        return bool(self.settings.model_version)

    def waiting_for(self) -> str:
        """Say what readiness still waits for ("" when ready)."""
        if self.pinned and self.models is None:
            reason = self.pin_error or "loading"
            return f"pinned model version {self.settings.model_version} not loaded: {reason}"
        if self.snapshot is None:
            return "no data yet"
        return "" if self.models is not None else "no model yet"

    def age_seconds(self) -> float | None:
        """Return how old the data served is, or None without data."""
        if self.snapshot is None:
            return None
        return max(0.0, (self.clock() - self.snapshot.fetched_at).total_seconds())

    def is_fresh(self) -> bool:
        """Tell whether the data served is younger than the staleness limit."""
        age = self.age_seconds()
        return age is not None and age <= self.settings.stale_after_seconds

    def refresh_due(self) -> bool:
        """Tell whether the cache has expired (and no failure backoff is running)."""
        now = self.clock()
        if self._retry_after is not None and now < self._retry_after:
            return False
        age = self.age_seconds()
        return age is None or age >= self.settings.refresh_seconds

    def retrain_due(self) -> bool:
        """Tell whether the newest model trained here is older than the retraining interval."""
        if self.latest_trained is None:
            return True
        age = (self.clock() - self.latest_trained.trained_at).total_seconds()
        return age >= self.settings.retrain_seconds

    def load_stored_models(self) -> None:
        """Use the newest stored model version that fits the configured pollutants."""
        models = self.store.load_latest()
        anomaly = models.anomaly if models else None
        if models is None or anomaly is None:
            return
        if not set(anomaly.features) <= set(self.settings.pollutants):
            logger.info("stored model %s is for other pollutants; not used", models.version)
            return
        self.latest_trained = models
        if self.pinned:
            return  # only the pinned version is served; this one only dates the last training
        self._use(models)
        logger.info("using stored model %s", models.version)

    def _use(self, models: TrainedModels) -> None:
        self.models = models
        metrics.MODEL_INFO.clear()
        metrics.MODEL_INFO.labels(models.version).set(1)
        metrics.SERVED_MODEL.clear()
        version = models.registered_version or models.version
        metrics.SERVED_MODEL.labels(self.settings.registered_model, version).set(1)

    # --- the pinned version ----------------------------------------------------------------

    async def load_pin(self) -> bool:
        """Try once to download, verify and serve the pinned version; True once served."""
        version = self.settings.model_version
        try:
            if self.registry is None:
                raise PinError("no model registry to load it from (see the start-up warning)")
            models = await asyncio.to_thread(load_pinned, self.registry, self.settings)
        except Exception as error:  # whatever failed, nothing unverified is served; retried
            self.pin_error = str(error) or type(error).__name__
            metrics.REGISTRY_ERRORS.labels("load").inc()
            logger.warning("pinned model version %s not loaded: %s", version, self.pin_error)
            return False
        self.pin_error = None
        self._use(models)
        async with self._refresh_lock:  # after a refresh that began before the pin was in use
            await self._rebuild()
        logger.info("serving pinned model version %s", version, extra={"local": models.version})
        return True

    async def keep_loading_pin(self) -> None:
        """Retry loading the pinned version until it is served (the service is not ready)."""
        while True:
            if await self.load_pin():
                return
            await asyncio.sleep(self.settings.registry_retry_seconds)

    # --- refresh ---------------------------------------------------------------------------

    async def current(self) -> Snapshot | None:
        """Return the snapshot, refreshing first when the cache has expired."""
        if self.refresh_due():
            await self.refresh()
        return self.snapshot

    async def refresh(self, *, force: bool = False) -> None:
        """Fetch new data (one refresh at a time), retrain when due, rebuild the snapshot."""
        async with self._refresh_lock:
            if not force and not self.refresh_due():
                return  # another request refreshed while this one waited
            try:
                data = await fetch_air_quality(self.client, self.settings)
            except OpenMeteoError as error:
                self._failed(error)
                return
            fetched_at = self.clock()
            self.last_error = None
            self._retry_after = None
            metrics.FETCHES.labels("ok").inc()
            timeline = split_timeline(data, fetched_at)
            self._timeline = timeline
            if self.retrain_due():
                await self._train(timeline)
            snapshot = await asyncio.to_thread(
                build_snapshot, timeline, self.models, self.settings, fetched_at
            )
            self.snapshot = snapshot
            self._export(snapshot)

    def _failed(self, error: OpenMeteoError) -> None:
        now = self.clock()
        self.last_error, self.last_error_at = error, now
        self._retry_after = now + timedelta(seconds=self.settings.failure_backoff_seconds)
        metrics.FETCHES.labels("error").inc()
        metrics.FETCH_ERRORS.labels(error.kind).inc()
        logger.warning(
            "Open-Meteo fetch failed: %s",
            error.reason,
            extra={
                "kind": error.kind,
                "status": error.status,
                "has_data": self.snapshot is not None,
            },
        )

    def _export(self, snapshot: Snapshot) -> None:
        metrics.CONCENTRATION.clear()
        metrics.WHO_RATIO.clear()
        for reading in snapshot.readings:
            if reading.value is not None and reading.ratio is not None:
                metrics.CONCENTRATION.labels(reading.pollutant).set(reading.value)
                metrics.WHO_RATIO.labels(reading.pollutant).set(reading.ratio)
        verdict = snapshot.verdict
        for level in Level:
            metrics.VERDICT.labels(level.value).set(
                int(verdict is not None and verdict.level == level)
            )
        if verdict is not None and verdict.anomaly is not None:
            metrics.ANOMALY_SCORE.set(verdict.anomaly.score)

    # --- training --------------------------------------------------------------------------

    async def _train(self, timeline: Timeline) -> TrainedModels | None:
        async with self._train_lock:
            try:
                trained = await asyncio.to_thread(self._train_and_save, timeline)
            except NotEnoughDataError as error:
                metrics.TRAININGS.labels("not_enough_data").inc()
                logger.warning("model not trained: %s", error)
                return None
            metrics.TRAININGS.labels("ok").inc()
            self.latest_trained = trained
            if not self.pinned:  # pinned: a candidate, logged but never served here
                self._use(trained)
            return trained

    def _train_and_save(self, timeline: Timeline) -> TrainedModels:
        trained = train_models(timeline, self.settings, self.clock())
        return self._register(self.store.save(trained))

    def _register(self, saved: TrainedModels) -> TrainedModels:
        if self.registry is None:
            return saved
        artifact = self.store.directory / str(saved.card["artifact"]["file"])
        try:
            version = self.registry.log(saved, artifact)
        except Exception as error:  # the registry must never fail a training: warn and count
            metrics.REGISTRY_ERRORS.labels("log").inc()
            logger.warning("model %s not logged to the registry: %s", saved.version, error)
            return saved
        logger.info("model %s logged as version %s", saved.version, version)
        return dataclasses.replace(saved, registered_version=version)

    async def _rebuild(self) -> None:
        """Rebuild the snapshot with the models served now (after a training or a pin)."""
        if self.snapshot is None or self._timeline is None:
            return
        self.snapshot = await asyncio.to_thread(
            build_snapshot, self._timeline, self.models, self.settings, self.snapshot.fetched_at
        )
        self._export(self.snapshot)

    async def train(self) -> TrainedModels:
        """Retrain now on the latest data (``POST /train``) and rebuild the snapshot."""
        if self._train_lock.locked():
            raise TrainingBusyError("a training is already running")
        if self._timeline is None:
            await self.refresh(force=True)
        timeline = self._timeline
        if timeline is None:
            reason = self.last_error.reason if self.last_error else "no data fetched yet"
            raise NoDataError(reason)
        trained = await self._train(timeline)
        if trained is None:
            raise NotEnoughDataError("not enough history to train on")
        await self._rebuild()
        return trained

    # --- manual check ----------------------------------------------------------------------

    def check(self, values: Mapping[str, float]) -> Verdict:
        """Judge concentrations a person entered, with the model in use."""
        readings = tuple(Reading(p, values[p]) for p in self.settings.pollutants if p in values)
        return judge(readings, score_readings(self.models, values), self.settings.city)

    # --- background ------------------------------------------------------------------------

    def record_freshness(self) -> None:
        """Count one freshness check (the data-freshness SLO's event)."""
        metrics.FRESHNESS_CHECKS.labels("true" if self.is_fresh() else "false").inc()

    async def run(self) -> None:
        """Refresh when due, retrain on schedule and check freshness, once a minute."""
        interval = min(FRESHNESS_CHECK_SECONDS, self.settings.refresh_seconds)
        while True:
            try:
                if self.refresh_due():
                    await self.refresh()
                elif self.latest_trained is not None and self.retrain_due():
                    await self.train()
                self.record_freshness()
            except asyncio.CancelledError:
                raise
            except (NotEnoughDataError, NoDataError, TrainingBusyError) as error:
                logger.warning("scheduled training skipped: %s", error)
            except Exception:  # the loop must survive anything; the log says what happened
                logger.exception("background refresh failed")
            await asyncio.sleep(interval)
