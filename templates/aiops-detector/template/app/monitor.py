"""The background evaluation: every interval, each trained query's newest points are scored.

Each evaluation reads a query from just after the last point it scored to now, on the
grid of the model's step (so a point has the same timestamp every time it is read), plus
the context its features need; it sets ``aiops_anomaly_score{query}`` to the latest score
of the query's most anomalous series and counts each anomalous point once in
``aiops_anomalies_total{query, severity}``. A query Prometheus cannot answer is logged and
counted, and tried again at the next interval.

Each anomaly window among the newly scored points goes to remediation
(:meth:`.proposals.Remediations.handle`), which proposes (or, in dry run, lists) what the
rules say. A window still open at the end of one evaluation and continued by the next is
handed on with its first start, so the evidence shows the whole incident; the rules'
cooldowns keep one incident from becoming a proposal per interval.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections import Counter
from datetime import UTC, datetime

from . import metrics
from .prometheus import PrometheusQueryError, PrometheusUnavailableError, TooManySeriesError
from .proposals import RemediationRecord
from .remediation import AnomalyWindow
from .runtime import Runtime
from .schemas import MAX_POINTS_PER_SERIES, MAX_SERIES_PER_QUERY
from .training import Source, TrainedModel
from .windows import AnomalyWindow as DetectedWindow

logger = logging.getLogger(__name__)


class Evaluator:
    """Scores the trained queries' newest points and exports what it found."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.last_scored: dict[Source, float] = {}
        # The last window of each series of each query, to continue it at the next interval.
        self.last_window: dict[tuple[Source, str], DetectedWindow] = {}

    def evaluate(self) -> list[AnomalyWindow]:
        """Evaluate every trained query once (blocking: run it in a thread); return new windows."""
        found: list[AnomalyWindow] = []
        for model in self.runtime.registry.queries():
            try:
                found += self.evaluate_query(model)
            except (PrometheusQueryError, PrometheusUnavailableError, TooManySeriesError) as error:
                metrics.EVALUATIONS.labels("prometheus_error").inc()
                logger.warning(
                    "evaluation failed", extra={"query": model.source.name, "error": str(error)}
                )
            else:
                metrics.EVALUATIONS.labels("ok").inc()
        return found

    def _continued(
        self, source: Source, key: str, window: DetectedWindow, gap: float
    ) -> DetectedWindow:
        last = self.last_window.get((source, key))
        if last is not None and last.start < window.start and window.start - last.end <= gap:
            peak = window.peak_score > last.peak_score
            window = dataclasses.replace(
                window,
                start=last.start,
                peak_score=window.peak_score if peak else last.peak_score,
                peak_at=window.peak_at if peak else last.peak_at,
                points=last.points + window.points,
                isolation_forest=last.isolation_forest or window.isolation_forest,
                seasonal=last.seasonal or window.seasonal,
            )
        self.last_window[(source, key)] = window
        return window

    def evaluate_query(self, model: TrainedModel) -> list[AnomalyWindow]:
        """Score the points of one query newer than the last scored (the last interval at first)."""
        detector, query = model.detector, model.source.name
        step = detector.step
        now = self.runtime.clock().timestamp()
        end = math.floor(now / step) * step
        # At first, the last interval (at least the newest point when the step is longer).
        first = end - max(self.runtime.settings.detect_interval_seconds, step)
        since = self.last_scored.get(model.source, first) + step / 2
        # After a long pause, the newest points only: a range query has a point limit.
        since = max(since, end - (MAX_POINTS_PER_SERIES // 2) * step)
        if since > end:
            return []
        start = math.floor((since - detector.context_seconds) / step) * step
        series = self.runtime.prometheus.query_range(
            query,
            datetime.fromtimestamp(start, UTC),
            datetime.fromtimestamp(end, UTC),
            step,
            MAX_SERIES_PER_QUERY,
        )
        severities: Counter[str] = Counter()
        latest: list[float] = []
        windows: list[AnomalyWindow] = []
        newest = since - step / 2
        for item in series:
            if detector.profile(item) is None:
                continue  # a label set the model never saw: retrain to include it
            found = detector.detect(item, since=since)
            severities.update(point.severity for point in found.anomalies)
            for window in found.windows:
                whole = self._continued(model.source, item.key, window, detector.gap_seconds)
                windows.append(AnomalyWindow.of(query, whole))
            if found.latest_score is not None:
                latest.append(found.latest_score)
            if len(item):
                newest = max(newest, float(item.timestamps[-1]))
        for severity, count in severities.items():
            metrics.ANOMALIES.labels(query, severity).inc(count)
        if latest:
            metrics.ANOMALY_SCORE.labels(query).set(max(latest))
        self.last_scored[model.source] = newest
        return windows

    async def tick(self) -> list[RemediationRecord]:
        """Evaluate once (in a worker thread), then hand every new window to remediation."""
        windows = await asyncio.to_thread(self.evaluate)
        records: list[RemediationRecord] = []
        for window in windows:
            records += await self.runtime.remediations.handle(window)
        return records

    async def run(self) -> None:
        """Evaluate every interval until cancelled."""
        interval = self.runtime.settings.detect_interval_seconds
        while True:
            try:
                await self.tick()
            except Exception:  # a bug in one evaluation must not end the loop for good
                metrics.EVALUATIONS.labels("error").inc()
                logger.exception("evaluation failed")
            await asyncio.sleep(interval)
