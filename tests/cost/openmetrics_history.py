"""Fourteen days of kube-state-metrics, cAdvisor and token series, with their expected figures.

The history is what a real cluster's Prometheus would hold for three services in two
clusters, written as OpenMetrics text for ``promtool tsdb create-blocks-from openmetrics``:

- ``checkout`` (namespace ``shop``) is over-provisioned: each replica requests 1 core and
  2 GiB and uses 0.2 core and 0.5 GiB. In ``prod`` two replicas run all along and a third
  starts on day 7 at 12:00 (a part day, then a rise for the trend); ``staging`` runs one,
  which started a day before everything else (``LEAD_DAYS``): that day has one workload.
  One replica also carries the pod cgroup (``container=""``) and pause (``POD``) series
  cAdvisor exports, which must not be counted.
- ``search`` (namespace ``search``, ``prod``) uses more than its request from 18:00 to
  24:00 (1.5 cores, 1.5 GiB on a 1 core, 1 GiB request) and less before (0.5 core,
  0.75 GiB): ``max(request, usage)`` per hour is above both the request and the usage
  totals. Its ``proxy`` sidecar stays under its request, so taking the max per pod
  instead of per container gives another (wrong) figure.
- ``ranker`` (namespace ``ml``, ``prod``) is a batch: a new pod each day from 06:00 to
  18:00 (12 pod-hours) requesting 2 cores, 8 GiB and a GPU, using 1 core and 6 GiB, with a
  100 GiB persistent volume claim.
- ``debug`` (namespace ``shop``, ``prod``) is a pod without the ``app.kubernetes.io/name``
  label and without any cAdvisor series: service ``""``, usage unknown, request held. Its
  CPU request is halved on day 7 (a new pod, ``debug-2``, as a rollout does).
- ``toolbox`` (namespace ``shop``, ``staging``) has no ``kube_pod_labels`` series at all
  (service ``""``) and uses twice its CPU request (held is the usage).

Counters (cAdvisor CPU seconds) are sampled every 150 s so a 5-minute ``rate`` has two
points under either edge rule of Prometheus' range windows (2.x counts both edges, 3.x
only the right one); gauges every 5 minutes. Every value is exact in binary floating
point except the CPU usage rates (0.2, 0.1 ... cores). Usage only changes on the hour, so
the figures follow from the formulas by hand.

``tests.cost.history_figures`` derives the expected figures from the same pod specs; the
tests also state them as literals, so a slip here cannot hide.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO

DAYS = 14
LEAD_DAYS = 1  # staging's checkout ran alone for a day before the 14 days
HISTORY_END = datetime(2025, 3, 15, tzinfo=UTC)  # a UTC midnight: 1 to 14 March 2025
GIB = 2**30
MIB = 2**20
PEAK_HOURS = range(18, 24)  # when search bursts above its request
COUNTER_STEP = 150  # seconds between counter samples: 2 or 3 in a 5-minute window
GAUGE_STEP = 300  # seconds between gauge samples
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Backfill:
    """A running Prometheus holding the history: its URL and the history's time span."""

    url: str
    end: datetime  # the last sample (a UTC midnight)

    @property
    def start(self) -> datetime:
        """The start of the 14 days every workload ran (a UTC midnight)."""
        return self.end - DAY * DAYS

    @property
    def days(self) -> list[date]:
        """The 14 whole UTC days every workload ran, oldest first."""
        return [(self.start + DAY * n).date() for n in range(DAYS)]

    @property
    def lead_day(self) -> date:
        """The day before them, when only staging's checkout ran."""
        return (self.start - DAY).date()


@dataclass(frozen=True)
class Level:
    """A usage that is ``base`` outside PEAK_HOURS and ``peak`` during them."""

    base: Decimal
    peak: Decimal

    def at(self, hour: int) -> Decimal:
        """The usage during ``hour`` (0-23) of a day."""
        return self.peak if hour in PEAK_HOURS else self.base


def steady(value: str | int) -> Level:
    """The same usage all day."""
    return Level(Decimal(value), Decimal(value))


@dataclass(frozen=True)
class Container:
    """One container: requests, and its usage (None: cAdvisor has no series for it)."""

    name: str
    cpu_request: Decimal  # cores
    memory_request: int  # bytes
    cpu: Level | None  # cores
    memory: Level | None  # bytes (Decimal)
    gpus: int = 0


@dataclass(frozen=True)
class Pod:
    """One pod: where it runs, its app label (None: no label) and when it ran."""

    cluster: str
    namespace: str
    name: str
    app: str | None
    containers: tuple[Container, ...]
    start: datetime
    stop: datetime  # exclusive, except that pods running to the end have a sample at it
    pvc: tuple[str, int] | None = None  # claim name, bytes
    cgroup_series: bool = False  # also export the pod cgroup and pause container series
    pod_labels: bool = True  # kube-state-metrics has a kube_pod_labels series for it


def _checkout() -> Container:
    return Container("app", Decimal(1), 2 * GIB, steady("0.2"), steady(GIB // 2))


def pods(end: datetime = HISTORY_END) -> list[Pod]:
    """The pods of the history ending at ``end`` (a UTC midnight)."""
    start = end - DAY * DAYS
    burst = (
        Level(Decimal("0.5"), Decimal("1.5")),
        Level(Decimal(3 * GIB // 4), Decimal(3 * GIB // 2)),
    )
    search = (
        Container("api", Decimal(1), GIB, *burst),
        Container("proxy", Decimal("0.25"), 128 * MIB, steady("0.1"), steady(64 * MIB)),
    )
    ranker = Container("model", Decimal(2), 8 * GIB, steady(1), steady(6 * GIB), gpus=1)
    debug = Container("shell", Decimal("0.5"), 256 * MIB, None, None)
    smaller = Container("shell", Decimal("0.25"), 256 * MIB, None, None)
    toolbox = Container("tools", Decimal("0.25"), 512 * MIB, steady("0.5"), steady(256 * MIB))
    found = [
        Pod("prod", "shop", "checkout-a", "checkout", (_checkout(),), start, end, None, True),
        Pod("prod", "shop", "checkout-b", "checkout", (_checkout(),), start, end),
        Pod("prod", "shop", "checkout-c", "checkout", (_checkout(),), start + DAY * 7.5, end),
        Pod("staging", "shop", "checkout-s", "checkout", (_checkout(),), start - DAY, end),
        Pod("prod", "search", "search-0", "search", search, start, end),
        Pod("prod", "shop", "debug", None, (debug,), start, start + DAY * 7),
        Pod("prod", "shop", "debug-2", None, (smaller,), start + DAY * 7, end),
        Pod("staging", "shop", "toolbox", None, (toolbox,), start, end, pod_labels=False),
    ]
    for day in range(DAYS):
        begin = start + DAY * day + 6 * HOUR
        claim = ("ranker-data", 100 * GIB)
        found.append(
            Pod("prod", "ml", f"ranker-{day}", "ranker", (ranker,), begin, begin + 12 * HOUR, claim)
        )
    return found


def _times(pod: Pod, step: int, end: datetime) -> Iterator[int]:
    first, stop = int(pod.start.timestamp()), int(pod.stop.timestamp())
    last = stop if pod.stop == end else stop - step  # a pod still running at the end
    yield from range(first, last + 1, step)


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{name}="{value}"' for name, value in labels.items()) + "}"


def _of(pod: Pod, **labels: str) -> str:
    return _labels(cluster=pod.cluster, namespace=pod.namespace, pod=pod.name, **labels)


def _hour(timestamp: int) -> int:
    return (timestamp // 3600) % 24


Lines = Iterator[str]


def _ksm(pods_: list[Pod], end: datetime) -> Lines:
    ksm = {"job": "kube-state-metrics"}  # a label the queries must aggregate away
    yield "# TYPE kube_pod_labels gauge"
    for pod in (pod for pod in pods_ if pod.pod_labels):
        app = {} if pod.app is None else {"label_app_kubernetes_io_name": pod.app}
        labels = _of(pod, **app, **ksm)
        yield from (f"kube_pod_labels{labels} 1 {t}" for t in _times(pod, GAUGE_STEP, end))
    yield "# TYPE kube_pod_container_resource_requests gauge"
    for pod in pods_:
        for container in pod.containers:
            requests = [("cpu", "core", container.cpu_request)]
            requests.append(("memory", "byte", Decimal(container.memory_request)))
            if container.gpus:
                requests.append(("nvidia_com_gpu", "integer", Decimal(container.gpus)))
            for resource, unit, value in requests:
                labels = _of(pod, container=container.name, resource=resource, unit=unit, **ksm)
                for t in _times(pod, GAUGE_STEP, end):
                    yield f"kube_pod_container_resource_requests{labels} {value} {t}"
    yield "# TYPE kube_pod_spec_volumes_persistentvolumeclaims_info gauge"
    claims: dict[tuple[str, str, str], int] = {}
    for pod in pods_:
        if pod.pvc is None:
            continue
        claim, size = pod.pvc
        labels = _of(pod, volume="data", persistentvolumeclaim=claim, **ksm)
        for t in _times(pod, GAUGE_STEP, end):
            yield f"kube_pod_spec_volumes_persistentvolumeclaims_info{labels} 1 {t}"
        claims[(pod.cluster, pod.namespace, claim)] = size
    # The claim exists for the whole history (it outlives the batch pods that mount it).
    yield "# TYPE kube_persistentvolumeclaim_resource_requests_storage_bytes gauge"
    first = int((end - DAY * DAYS).timestamp())
    for (cluster, namespace, claim), size in claims.items():
        labels = _labels(cluster=cluster, namespace=namespace, persistentvolumeclaim=claim, **ksm)
        for t in range(first, int(end.timestamp()) + 1, GAUGE_STEP):
            yield f"kube_persistentvolumeclaim_resource_requests_storage_bytes{labels} {size} {t}"


def _cadvisor_containers(pod: Pod) -> list[tuple[str, Level, Level]]:
    found = [(c.name, c.cpu, c.memory) for c in pod.containers if c.cpu and c.memory]
    if pod.cgroup_series and found:
        # The pod cgroup sums its containers; the pause container is tiny but present.
        cpu = Level(*(sum((c.at(h) for _, c, _ in found), Decimal(0)) for h in (0, 18)))
        memory = Level(*(sum((m.at(h) for _, _, m in found), Decimal(0)) for h in (0, 18)))
        found += [("", cpu, memory), ("POD", steady("0.001"), steady(str(MIB)))]
    return found


def _cadvisor(pods_: list[Pod], end: datetime) -> Lines:
    kubelet = {"job": "kubelet"}
    yield "# TYPE container_cpu_usage_seconds counter"
    for pod in pods_:
        for name, cpu, _ in _cadvisor_containers(pod):
            image = "" if name == "" else f"registry.local/{name}:1"
            labels = _of(pod, container=name, image=image, **kubelet)
            total = Decimal(0)
            for t in _times(pod, COUNTER_STEP, end):
                yield f"container_cpu_usage_seconds_total{labels} {total} {t}"
                total += cpu.at(_hour(t)) * COUNTER_STEP  # the step after t
    yield "# TYPE container_memory_working_set_bytes gauge"
    for pod in pods_:
        for name, _, memory in _cadvisor_containers(pod):
            labels = _of(pod, container=name, **kubelet)
            for t in _times(pod, GAUGE_STEP, end):
                yield f"container_memory_working_set_bytes{labels} {memory.at(_hour(t))} {t}"


# Tokens per 5 minutes: search labels its series the Prometheus way (model, type,
# service), ranker the OpenTelemetry GenAI way (gen_ai_request_model, gen_ai_token_type,
# app_kubernetes_io_name).
_SEARCH_LLM = {"namespace": "search", "service": "search", "model": "gpt-4o-mini"}
_RANKER_LLM = {
    "namespace": "ml",
    "app_kubernetes_io_name": "ranker",
    "gen_ai_request_model": "llama-3-8b",
}
TOKEN_SERIES: tuple[tuple[dict[str, str], int], ...] = (
    ({**_SEARCH_LLM, "type": "input"}, 1000),
    ({**_SEARCH_LLM, "type": "output"}, 200),
    ({**_RANKER_LLM, "gen_ai_token_type": "input"}, 300),
    ({**_RANKER_LLM, "gen_ai_token_type": "output"}, 100),
)
# An SLO's request counter: checkout answers 600 requests per 5 minutes, 6 of them 5xx.
REQUEST_SERIES: tuple[tuple[dict[str, str], int], ...] = (
    ({"job": "checkout", "code": "200"}, 594),
    ({"job": "checkout", "code": "500"}, 6),
)


def _counters(end: datetime) -> Lines:
    start = int((end - DAY * DAYS).timestamp())
    times = range(start, int(end.timestamp()) + 1, GAUGE_STEP)
    for family, series in (("llm_tokens", TOKEN_SERIES), ("http_requests", REQUEST_SERIES)):
        yield f"# TYPE {family} counter"
        for labels, per_step in series:
            text = _labels(cluster="prod", **labels)
            for n, t in enumerate(times):
                yield f"{family}_total{text} {n * per_step} {t}"


def write_history(path: Path, end: datetime = HISTORY_END) -> Path:
    """Write the OpenMetrics history ending at ``end`` (a UTC midnight) to ``path``."""
    if end != end.replace(hour=0, minute=0, second=0, microsecond=0) or end.tzinfo is None:
        raise ValueError(f"the history ends at a UTC midnight, not {end}")
    all_pods = pods(end)
    with path.open("w", encoding="utf-8") as out:
        _write(out, _ksm(all_pods, end))
        _write(out, _cadvisor(all_pods, end))
        _write(out, _counters(end))
        out.write("# EOF\n")
    return path


def _write(out: TextIO, lines: Lines) -> None:
    out.writelines(line + "\n" for line in lines)
