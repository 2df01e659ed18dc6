"""Prometheus' HTTP API: instant queries, range queries and "is it up".

``PrometheusClient`` talks to a real Prometheus (or Thanos) through prometheus-api-client
with a timeout and without the library's default retries (three attempts with a backoff
would hold a page for seconds when Prometheus is down). Every failure to get an answer
becomes ``PrometheusUnavailableError`` whose message says "Prometheus at URL is not
reachable", which pages show as a banner instead of an error page. ``FakePrometheus``
answers plain selectors from samples given to it, for unit tests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

DEFAULT_TIMEOUT_SECONDS = 5.0


class PrometheusError(RuntimeError):
    """Prometheus gave no usable answer."""


class PrometheusUnavailableError(PrometheusError):
    """Prometheus could not be reached, timed out or answered with a server error."""


class PrometheusQueryError(PrometheusError):
    """Prometheus refused a query (bad PromQL, too many points): a bug on our side."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant vector: its labels (``__name__`` included) and value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a range query: labels and ``(unix seconds, value)`` points."""

    labels: Mapping[str, str]
    points: Sequence[tuple[float, float]]


class Prometheus(Protocol):
    """What the portal asks Prometheus."""

    @property
    def url(self) -> str:
        """The base URL, shown in messages (no credentials)."""
        ...

    def query(self, promql: str) -> list[Sample]:
        """Evaluate ``promql`` now; raise ``PrometheusError`` when there is no answer."""
        ...

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Evaluate ``promql`` from ``start`` to ``end`` (unix seconds) every ``step`` seconds."""
        ...

    def is_up(self) -> bool:
        """Tell whether Prometheus answers at all (never raises)."""
        ...


def _float(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


def parse_vector(result: Iterable[Mapping[str, Any]]) -> list[Sample]:
    """Read the ``data.result`` of an instant query (a vector) into samples."""
    samples = []
    for item in result:
        value = item.get("value") or (None, "NaN")
        samples.append(Sample(dict(item.get("metric") or {}), _float(value[1])))
    return samples


def parse_matrix(result: Iterable[Mapping[str, Any]]) -> list[Series]:
    """Read the ``data.result`` of a range query (a matrix) into series."""
    series = []
    for item in result:
        points = [(float(at), _float(raw)) for at, raw in item.get("values") or ()]
        series.append(Series(dict(item.get("metric") or {}), points))
    return series


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _public(url: str) -> str:
    # A URL may carry basic-auth credentials; messages and pages never show them.
    return re.sub(r"//[^/@]*@", "//", url.rstrip("/"))


class PrometheusClient:
    """The real Prometheus, through prometheus-api-client's ``PrometheusConnect``."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        """Connect lazily to ``url``; every request gives up after ``timeout`` seconds."""
        self._url = _public(url)
        self.timeout = timeout
        self._connection = PrometheusConnect(
            url=url.rstrip("/"),
            retry=Retry(total=0, connect=0, read=0, redirect=2, status=0),
            # requests takes float seconds; the library only annotates int.
            timeout=timeout,  # type: ignore[arg-type]
        )

    @property
    def url(self) -> str:
        """The base URL without credentials."""
        return self._url

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._connection.close()

    def _unreachable(self, error: Exception) -> PrometheusUnavailableError:
        return PrometheusUnavailableError(
            f"Prometheus at {self.url} is not reachable ({self._reason(error)})"
        )

    def _reason(self, error: Exception) -> str:
        text = str(error)
        if "timed out" in text.lower() or type(error).__name__.endswith("Timeout"):
            return f"no answer within {self.timeout:g} s"
        errno = _ERRNO.search(text)
        if errno:
            return errno.group(1).strip().lower()
        return text if len(text) <= 200 else text[:200] + "…"

    def _call(self, action: str, *args: Any) -> Any:
        try:
            return getattr(self._connection, action)(*args)
        except OSError as error:  # requests' RequestException (refused, timeout) is an OSError
            raise self._unreachable(error) from error
        except PrometheusApiClientException as error:
            message = str(error)
            # 400 and 422 are Prometheus refusing the query; 5xx, 503 while starting, and
            # anything else mean it cannot answer now.
            if message.startswith(("HTTP Status Code 400", "HTTP Status Code 422")):
                raise PrometheusQueryError(f"Prometheus at {self.url}: {message}") from error
            raise self._unreachable(error) from error
        except (ValueError, KeyError, TypeError) as error:  # not Prometheus' JSON at all
            raise self._unreachable(error) from error

    def query(self, promql: str) -> list[Sample]:
        """Run an instant query at the current time."""
        return parse_vector(self._call("custom_query", promql))

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Run a range query; ``step`` is in seconds."""
        begin = datetime.fromtimestamp(start, tz=UTC)
        finish = datetime.fromtimestamp(end, tz=UTC)
        raw = self._call("custom_query_range", promql, begin, finish, f"{max(step, 0.001):g}s")
        return parse_matrix(raw)

    def is_up(self) -> bool:
        """Ask for the root page; any answer other than success means down."""
        try:
            return bool(self._connection.check_prometheus_connection())
        except OSError:
            return False


# Selectors the fake understands: ``name``, ``name{...}`` or ``{...}`` with =, !=, =~, !~,
# optionally inside ``max by (labels) (...)``.
_MAX_BY = re.compile(r"^\s*max\s+by\s*\((?P<labels>[^)]*)\)\s*\((?P<inner>.*)\)\s*$", re.S)
_SELECTOR = re.compile(r"^\s*(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?:\{(?P<body>.*)\})?\s*$")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _matchers(body: str) -> list[tuple[str, str, str]]:
    found, position = [], 0
    while position < len(body.strip()):
        match = _MATCHER.match(body, position)
        if match is None:
            raise ValueError(f"FakePrometheus cannot read the matchers {{{body}}}")
        found.append((match.group(1), match.group(2), match.group(3).replace('\\"', '"')))
        position = match.end()
    return found


def _matches(labels: Mapping[str, str], name: str, op: str, wanted: str) -> bool:
    value = labels.get(name, "")
    if op == "=":
        return value == wanted
    if op == "!=":
        return value != wanted
    hit = re.fullmatch(wanted, value) is not None
    return hit if op == "=~" else not hit


@dataclass
class FakePrometheus:
    """A fake for unit tests: answers vector selectors from ``samples``.

    Range queries return ``ranges[promql]`` (empty when not given). With ``up=False``
    every call fails like an unreachable Prometheus. ``calls`` records ``(kind, promql)``.
    """

    samples: list[Sample] = field(default_factory=list)
    ranges: dict[str, list[Series]] = field(default_factory=dict)
    up: bool = True
    url: str = "http://prometheus.fake:9090"
    calls: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, value: float, **labels: str) -> None:
        """Add a sample of metric ``name``."""
        self.samples.append(Sample({"__name__": name, **labels}, value))

    def _check_up(self) -> None:
        if not self.up:
            raise PrometheusUnavailableError(
                f"Prometheus at {self.url} is not reachable (connection refused)"
            )

    def query(self, promql: str) -> list[Sample]:
        """Return the samples the selector ``promql`` matches (grouped by ``max by``)."""
        self.calls.append(("query", promql))
        self._check_up()
        aggregated = _MAX_BY.match(promql)
        if aggregated is None:
            return self._select(promql)
        labels = [name.strip() for name in aggregated["labels"].split(",") if name.strip()]
        groups: dict[tuple[str, ...], Sample] = {}
        for sample in self._select(aggregated["inner"]):
            key = tuple(sample.labels.get(name, "") for name in labels)
            kept = {name: value for name, value in zip(labels, key, strict=True) if value}
            found = groups.get(key)
            if found is None or sample.value > found.value:
                groups[key] = Sample(kept, sample.value)
        return list(groups.values())

    def _select(self, promql: str) -> list[Sample]:
        selector = _SELECTOR.match(promql)
        if selector is None or not (selector["name"] or selector["body"]):
            raise PrometheusQueryError(f"FakePrometheus only answers selectors, not {promql!r}")
        matchers = _matchers(selector["body"] or "")
        if selector["name"]:
            matchers.append(("__name__", "=", selector["name"]))
        return [
            sample
            for sample in self.samples
            if all(_matches(sample.labels, *matcher) for matcher in matchers)
        ]

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Return the canned series of ``promql``."""
        self.calls.append(("query_range", promql))
        self._check_up()
        return list(self.ranges.get(promql, []))

    def is_up(self) -> bool:
        """Return ``up``."""
        self.calls.append(("is_up", ""))
        return self.up
