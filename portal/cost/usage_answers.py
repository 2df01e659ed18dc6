"""The service page's usage-metrics answers (p95 usage, tokens, increases), kept minutes.

``/cost/{service}`` asks Prometheus for the p95 usage of the service's containers (three
queries), the token counts of every workload and the increase of its SLO's request
counter, each over whole UTC days: the same answers for minutes. ``UsageAnswers`` keeps
them per metrics object, question and window, and makes concurrent first requests for
one key share one query.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from time import monotonic
from typing import TypeVar, cast

from portal.integrations.cost_metrics import (
    ContainerUsage,
    CostSourceError,
    TokenCount,
    UsageMetrics,
)

ANSWER_SECONDS = 180.0  # how long the page reuses an answer of the usage metrics
FAILURE_SECONDS = 30.0  # and a failure: a down Prometheus costs one timeout per period
T = TypeVar("T")


@dataclass
class _Answer:
    metrics: UsageMetrics  # kept so an id() reused by a new object never matches
    done: threading.Event = field(default_factory=threading.Event)
    value: object = None
    error: Exception | None = None
    until: float = math.inf  # while asking: no expiry


class UsageAnswers:
    """The service page's usage-metrics answers (p95, tokens, increases), kept a few minutes.

    Keyed by the metrics object, the question and its window (whole UTC days), so a page
    reloaded, the API after the page, or another service's page (tokens are asked for
    all services at once) asks nothing again. Concurrent first requests for one key make
    one query: the others wait for its answer. An answer is kept ``seconds``, a failure
    ``failure_seconds``.
    """

    def __init__(
        self,
        seconds: float = ANSWER_SECONDS,
        failure_seconds: float = FAILURE_SECONDS,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        """Keep answers ``seconds`` and failures ``failure_seconds`` by ``clock``."""
        self.seconds, self.failure_seconds, self.clock = seconds, failure_seconds, clock
        self._lock = threading.Lock()
        self._answers: dict[tuple[object, ...], _Answer] = {}

    def wrap(self, metrics: UsageMetrics | None) -> UsageMetrics | None:
        """Return ``metrics`` answering through this cache (None stays None)."""
        return None if metrics is None else _CachedUsage(self, metrics)

    def answer(self, metrics: UsageMetrics, key: tuple[object, ...], ask: Callable[[], T]) -> T:
        """Return the kept answer to ``key``, or ``ask()`` once for every caller waiting."""
        full = (id(metrics), *key)
        while True:
            with self._lock:
                now = self.clock()
                found = self._answers.get(full)
                mine = found is None or found.metrics is not metrics or found.until <= now
                if mine:
                    for stale in [k for k, a in self._answers.items() if a.until <= now]:
                        del self._answers[stale]
                    found = self._answers[full] = _Answer(metrics)
            assert found is not None
            if mine:
                return self._ask(full, found, ask)
            found.done.wait()
            if found.until == 0:
                continue  # the asker got no answer (not a source failure): ask again
            if found.error is not None:  # a new exception: one object raised in many threads
                raise CostSourceError(str(found.error) or repr(found.error))
            return cast(T, found.value)

    def _ask(self, full: tuple[object, ...], answer: _Answer, ask: Callable[[], T]) -> T:
        try:
            value = ask()
        except (CostSourceError, OSError, ValueError) as error:
            answer.error, answer.until = error, self.clock() + self.failure_seconds
            raise
        except BaseException:
            with self._lock:  # not an answer: forget it, the waiters ask again
                self._answers.pop(full, None)
                answer.until = 0
            raise
        else:
            answer.value, answer.until = value, self.clock() + self.seconds
            return value
        finally:
            answer.done.set()


class _CachedUsage:
    """``UsageMetrics`` answering through a ``UsageAnswers``."""

    def __init__(self, cache: UsageAnswers, metrics: UsageMetrics) -> None:
        self._cache, self._metrics, self.url = cache, metrics, metrics.url

    def container_usage(self, service: str, start: datetime, end: datetime) -> list[ContainerUsage]:
        """Return the p95 usage of ``service``'s containers (kept)."""
        key = ("containers", service, start, end)
        ask = self._metrics.container_usage
        return list(self._cache.answer(self._metrics, key, lambda: ask(service, start, end)))

    def token_counts(self, start: datetime, end: datetime) -> list[TokenCount]:
        """Return the token counts of every workload (kept)."""
        ask = self._metrics.token_counts
        return list(
            self._cache.answer(self._metrics, ("tokens", start, end), lambda: ask(start, end))
        )

    def increase(self, expression: str, start: datetime, end: datetime) -> Decimal | None:
        """Return the increase of ``expression`` (kept)."""
        key = ("increase", expression, start, end)
        ask = self._metrics.increase
        return self._cache.answer(self._metrics, key, lambda: ask(expression, start, end))
