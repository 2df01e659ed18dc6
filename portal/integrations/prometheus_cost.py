"""Measured cost inputs from Prometheus: kube-state-metrics requests and cAdvisor usage.

``PrometheusCostSource`` is both a ``CostSource`` (resource-hours per workload and UTC day)
and the ``UsageMetrics`` (p95 usage, LLM tokens, a counter's increase) of
:mod:`portal.integrations.cost_metrics`, read from any Prometheus that scrapes
kube-state-metrics and the kubelets' cAdvisor.

How the figures are read:

- A workload is the cluster label's value (``cluster_label``, "" when absent), the
  namespace, and the pod label ``app.kubernetes.io/name``, which kube-state-metrics exports
  as ``kube_pod_labels{label_app_kubernetes_io_name}`` when it is allowed to (its
  ``--metric-labels-allowlist``). Pods without it, or without any ``kube_pod_labels``
  series, keep service "" rather than being dropped.
- ``resource_days`` makes nine range queries (step one day, each evaluated at the end of
  its UTC day) whatever the number of workloads or days. Inside each, an hourly subquery
  (``[23h30m:1h]``: the day's 24 hour-ends under either rule for a window's left edge)
  looks at every hour of the day: gauges (requests, working set, PVC sizes) at the hour's
  midpoint (``offset 30m``), so a pod counts for the hours it ran, whatever the edges;
  CPU usage as the counter's ``rate`` over the whole hour (the core-seconds actually used;
  a 5-minute rate at one instant would miss the rest of the hour); the app label as seen
  at any time in the hour (only the ``kube_pod_labels`` series that carry it are read: a
  cluster's system pods without it fall to service "" all the same). Held is OpenCost's
  rule: per container and hour, the larger of request and usage, then summed. The
  current day counts the hours so far.
- ``container_usage`` and ``token_counts`` take three queries and one; ``increase`` one.

Figures come back as Decimals rounded to 1e-9 (of a core-hour, GiB-hour, core): far below
a cent, and above the noise of Prometheus' float sums, so the same data gives the same
Decimal. Every failure (unreachable, a refused query, NaN or a point on no day) raises
``CostSourceError`` naming the Prometheus URL and the query.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal

from portal.integrations.cost_metrics import (
    ContainerUsage,
    CostSourceError,
    ResourceDay,
    TokenCount,
    Workload,
)
from portal.integrations.prometheus import Prometheus, PrometheusError, Series
from portal.integrations.prometheus_cost_queries import (
    APP_LABEL,
    CONTAINERS,
    PLAIN_SELECTOR,
    check_expression,
    daily_queries,
)

DAY_SECONDS = 86400
P95_STEP = "5m"  # the resolution of the p95 and latest-request subqueries
INCREASE_STEP = "1m"  # the resolution of an increase of anything but a plain selector
GIB = Decimal(2**30)
_PLACES = Decimal("1e-9")
_WIDE = Context(prec=60)  # quantizing a large figure must not overflow the default 28 digits
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _timestamp(moment: datetime, name: str) -> float:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone, not {moment}")
    return moment.timestamp()


def _window(start: datetime, end: datetime) -> tuple[int, float]:
    """Return the range in whole seconds (at least one) and the evaluation time."""
    begin, finish = _timestamp(start, "start"), _timestamp(end, "end")
    if finish <= begin:
        raise ValueError(f"end {end} must be after start {start}")
    return max(1, round(finish - begin)), finish


def _reason(error: Exception, url: str) -> str:
    # The client's messages already start with the URL; say it once.
    text = str(error)
    for prefix in (f"Prometheus at {url} is ", f"Prometheus at {url}: "):
        text = text.removeprefix(prefix)
    return text or type(error).__name__


class PrometheusCostSource:
    """Resource-hours, p95 usage, tokens and increases from a Prometheus (see the module).

    ``cluster_label`` names the label whose value is the environment (the cluster);
    series without it belong to environment "". Times must carry a time zone; a range
    that ends before it starts is a ``ValueError`` (a caller's mistake, not the source's).
    """

    name: str = "Prometheus"

    def __init__(self, prometheus: Prometheus, cluster_label: str = "cluster") -> None:
        """Read from ``prometheus``; ``cluster_label`` must be a Prometheus label name."""
        if not _LABEL_NAME.fullmatch(cluster_label):
            raise ValueError(f"cluster_label {cluster_label!r} is not a Prometheus label name")
        self._prometheus = prometheus
        self.cluster_label = cluster_label
        self.url = prometheus.url
        self._daily = daily_queries(cluster_label)

    def _ask(self, name: str, promql: str, start: float, end: float, step: float) -> list[Series]:
        try:
            return self._prometheus.query_range(promql, start, end, step)
        except (PrometheusError, OSError, ValueError, TypeError, KeyError) as error:
            raise CostSourceError(
                f"Prometheus at {self.url}: the {name} query failed: {_reason(error, self.url)}"
            ) from error

    def _instant(self, name: str, promql: str, at: float) -> list[tuple[Mapping[str, str], float]]:
        """Evaluate at ``at`` (a range query of one point: the protocol's query is "now")."""
        found = []
        for series in self._ask(name, promql, at, at, 60):
            if len(series.points) != 1 or abs(series.points[0][0] - at) > 0.001:
                raise self._nonsense(name, series.points, series.labels)
            found.append((series.labels, series.points[0][1]))
        return found

    def _nonsense(self, name: str, value: object, labels: Mapping[str, str]) -> CostSourceError:
        shown = ", ".join(f"{key}={label!r}" for key, label in sorted(labels.items()))
        return CostSourceError(
            f"Prometheus at {self.url}: the {name} query gave {value!r} for {{{shown}}}"
        )

    def _decimal(
        self, name: str, value: float, labels: Mapping[str, str], places: Decimal = _PLACES
    ) -> Decimal:
        if not math.isfinite(value) or value < 0:
            raise self._nonsense(name, value, labels)
        return Decimal(repr(value)).quantize(places, ROUND_HALF_EVEN, _WIDE)

    def _workload(self, labels: Mapping[str, str], service_labels: tuple[str, ...]) -> Workload:
        service = next((labels[key] for key in service_labels if labels.get(key)), "")
        return Workload(labels.get(self.cluster_label, ""), labels.get("namespace", ""), service)

    def resource_days(self, first: date, last: date) -> list[ResourceDay]:
        """Every workload's ``ResourceDay`` for each UTC day from ``first`` to ``last``.

        Nine range queries whatever the number of workloads and days (one per figure);
        days a workload did not run are absent. Sorted by day, then workload.
        """
        if last < first:
            raise ValueError(f"last day {last} is before first day {first}")
        start = datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=1)
        end = start + timedelta(days=(last - first).days)
        figures: dict[tuple[date, Workload], dict[str, Decimal]] = {}
        for name, promql in self._daily.items():
            series_list = self._ask(name, promql, start.timestamp(), end.timestamp(), DAY_SECONDS)
            for series in series_list:
                workload = self._workload(series.labels, (APP_LABEL,))
                for at, value in series.points:
                    day = self._day(name, at, start, end, series.labels)
                    amount = self._decimal(name, value, series.labels)
                    figures.setdefault((day, workload), {})[name] = amount
        return [
            _resource_day(day, workload, got) for (day, workload), got in sorted(figures.items())
        ]

    def _day(
        self, name: str, at: float, start: datetime, end: datetime, labels: Mapping[str, str]
    ) -> date:
        if not start.timestamp() <= at <= end.timestamp() or at % DAY_SECONDS:
            raise self._nonsense(name, f"a point at {at}", labels)
        return (datetime.fromtimestamp(at, UTC) - timedelta(days=1)).date()

    def container_usage(self, service: str, start: datetime, end: datetime) -> list[ContainerUsage]:
        """Return the p95 CPU and memory usage of ``service``'s containers in ``[start, end]``.

        Per environment, namespace and container: at each 5-minute step the busiest
        replica (a 5-minute CPU rate, the working set), then the 95th percentile of those
        over the range. The request is the latest seen in the range, so a batch service not
        running at ``end`` keeps one. Three queries.
        """
        seconds, at = _window(start, end)
        cluster, window = self.cluster_label, f"[{seconds}s:{P95_STEP}]"
        pod, container = f"{cluster}, namespace, pod", f"{cluster}, namespace, pod, container"
        pods = f"max by ({pod}) (kube_pod_labels{{{APP_LABEL}={json.dumps(service)}}})"

        def busiest(per_container: str, extra: str = "") -> str:
            return (
                f"max by ({cluster}, namespace, container{extra})"
                f" (({per_container}) * on ({pod}) group_left () {pods})"
            )

        cpu = f"sum by ({container}) (rate(container_cpu_usage_seconds_total{CONTAINERS}[5m]))"
        memory = f"max by ({container}) (container_memory_working_set_bytes{CONTAINERS})"
        requests = (
            f"max by ({container}, resource)"
            f' (kube_pod_container_resource_requests{{resource=~"cpu|memory"}})'
        )
        queries = {
            "cpu_p95": f"quantile_over_time(0.95, ({busiest(cpu)}){window})",
            "memory_p95": f"quantile_over_time(0.95, ({busiest(memory)}){window})",
            "requests": f"last_over_time(({busiest(requests, ', resource')}){window})",
        }
        found: dict[tuple[Workload, str], dict[str, Decimal]] = {}
        for name, promql in queries.items():
            for labels, value in self._instant(name, promql, at):
                key = name if name != "requests" else f"{labels.get('resource')}_request"
                places = _PLACES if key.startswith("cpu") else Decimal(1)  # cores; bytes
                workload = Workload(labels.get(cluster, ""), labels.get("namespace", ""), service)
                figures = found.setdefault((workload, labels.get("container", "")), {})
                figures[key] = self._decimal(name, value, labels, places)
        return [
            ContainerUsage(
                workload=workload,
                container=container_name,
                cpu_request_cores=got.get("cpu_request"),
                cpu_p95_cores=got.get("cpu_p95"),
                memory_request_bytes=got.get("memory_request"),
                memory_p95_bytes=got.get("memory_p95"),
            )
            for (workload, container_name), got in sorted(found.items())
        ]

    def token_counts(self, start: datetime, end: datetime) -> list[TokenCount]:
        """Return the increase of ``llm_tokens_total`` per workload, model and kind.

        A series names its workload itself: its cluster label, ``namespace``, and
        ``app_kubernetes_io_name`` (the label the pods are mapped by) or else ``service``.
        The model is ``gen_ai_request_model`` (OpenTelemetry GenAI) or else ``model``; the
        kind ``gen_ai_token_type`` (OpenTelemetry: input, output) or else ``type`` or
        ``kind``. Rounded to whole tokens (Prometheus extrapolates to the window's edges).
        One query.
        """
        seconds, at = _window(start, end)
        by = dict.fromkeys((self.cluster_label, "namespace", *_SERVICE, *_MODEL, *_KIND))
        promql = f"sum by ({', '.join(by)}) (increase(llm_tokens_total[{seconds}s]))"
        totals: dict[tuple[Workload, str, str], Decimal] = {}
        for labels, value in self._instant("tokens", promql, at):
            workload = self._workload(labels, _SERVICE)
            model = next((labels[key] for key in _MODEL if labels.get(key)), "")
            kind = next((labels[key] for key in _KIND if labels.get(key)), "")
            tokens = self._decimal("tokens", value, labels, Decimal(1))  # a token is whole
            key = (workload, model, kind)
            totals[key] = totals.get(key, Decimal(0)) + tokens
        return [
            TokenCount(w, model, kind, tokens)
            for (w, model, kind), tokens in sorted(totals.items())
        ]

    def increase(self, expression: str, start: datetime, end: datetime) -> Decimal | None:
        """``sum(increase(...))`` of a counter ``expression`` over ``[start, end]``; None if empty.

        The expression (an SLO's text) only ever travels as the query parameter, wrapped
        whole: a plain selector as ``sum(increase(sel[range]))``, anything else as a
        subquery ``sum(increase((expr)[range:1m]))``. One that is not a closed term, or is
        longer than 4 KiB, is refused without asking Prometheus. One query.
        """
        try:
            text = check_expression(expression).strip()
        except ValueError as error:
            raise CostSourceError(
                f"Prometheus at {self.url}: the increase expression is refused: {error}"
            ) from error
        seconds, at = _window(start, end)
        if PLAIN_SELECTOR.fullmatch(text):
            promql = f"sum(increase({text}[{seconds}s]))"
        else:
            promql = f"sum(increase(({text})[{seconds}s:{INCREASE_STEP}]))"
        found = self._instant("increase", promql, at)
        if not found:
            return None
        labels, value = found[0]
        return self._decimal("increase", value, labels)


_SERVICE = ("app_kubernetes_io_name", "service")
_MODEL = ("gen_ai_request_model", "model")
_KIND = ("gen_ai_token_type", "type", "kind")


def _resource_day(day: date, workload: Workload, got: Mapping[str, Decimal]) -> ResourceDay:
    zero = Decimal(0)
    cpu_request, memory_request = got.get("cpu_request", zero), got.get("memory_request", zero)
    memory_usage = got.get("memory_usage")
    return ResourceDay(
        workload=workload,
        day=day,
        hours=got.get("pod_hours", zero),
        cpu_request_core_hours=cpu_request,
        cpu_usage_core_hours=got.get("cpu_usage"),
        cpu_held_core_hours=got.get("cpu_held", cpu_request),
        memory_request_gib_hours=_gib(memory_request),
        memory_usage_gib_hours=None if memory_usage is None else _gib(memory_usage),
        memory_held_gib_hours=_gib(got.get("memory_held", memory_request)),
        gpu_hours=got.get("gpu", zero),
        pv_gib_hours=_gib(got.get("pv", zero)),
    )


def _gib(byte_hours: Decimal) -> Decimal:
    return (byte_hours / GIB).quantize(_PLACES, ROUND_HALF_EVEN, _WIDE)
