"""Semantic rule of the SLO: the metrics it reads must be scraped by an object of the build.

An SLO computed from metrics nothing scrapes has no data: it never burns, its alerts never
fire, and its page says nothing is wrong. The rule reads the SLO as the rule generator
resolves it, finds the metrics each query reads (:mod:`portal.review.promql_selectors`)
and keeps those that name one of this build's Services by the labels the Prometheus
Operator gives scraped series (``job`` and ``service``; a PodMonitor's ``job`` is
``<namespace>/<name>``). Each of those must match a target some ServiceMonitor or
PodMonitor of the build scrapes. Queries about other jobs, exporters' metrics (``kube_``,
``container_``, ...) or recording rules (names with ``:``) are not the service's own and
are left alone: the rule only speaks when it can say which Service goes unscraped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.integrations.kubernetes import Finding, Severity, object_ref
from portal.review.policy import Rule
from portal.review.promql_selectors import Matcher, Selector, vector_selectors
from portal.review.selectors import (
    labels_of,
    mapping,
    matches_selector,
    monitored_namespaces,
    name_of,
    namespace_of,
    pod_templates,
    selected_templates,
)
from portal.slo.compiler.errors import InvalidSpecError
from portal.slo.compiler.generate import GenerateOptions, resolve_sources
from portal.slo.compiler.resolve import ResolvedSLO

RULE = Rule(
    id="slo-not-scraped",
    severity=Severity.ERROR,
    title="The SLO's metrics are scraped",
    reason="The platform's Prometheus finds targets only through ServiceMonitor and PodMonitor "
    "objects: an SLO on metrics nothing scrapes has no data, never burns its budget and "
    "never alerts.",
)
# Series these exporters (kube-state-metrics, cAdvisor, node-exporter, blackbox, a mesh)
# publish carry a service's name as a label without being scraped from the service.
EXPORTER_PREFIXES = (
    *("kube_", "container_", "node_", "kubelet_", "apiserver_", "probe_"),
    *("istio_", "envoy_"),
)
QUERY_FIELDS = (
    ("sli.events.error_query", "error_query"),
    ("sli.events.total_query", "total_query"),
    ("sli.raw.error_ratio_query", "ratio_query"),
)
SAMPLE_WINDOW = "5m"  # any window: only the metrics read matter
_OPTIONS = GenerateOptions()


@dataclass(frozen=True)
class Target:
    """Series labels of one scraped target, as the Prometheus Operator sets them."""

    namespace: str
    job: str
    service: str | None  # None for a PodMonitor: its series carry no service label


@dataclass(frozen=True)
class OwnService:
    """A Service of the build and the job values its series would carry."""

    ref: str
    namespace: str
    name: str
    jobs: frozenset[str]


def _job_labels(objects: list[dict[str, Any]]) -> set[str]:
    return {
        str(mapping(obj.get("spec")).get("jobLabel"))
        for obj in objects
        if obj.get("kind") == "ServiceMonitor" and mapping(obj.get("spec")).get("jobLabel")
    }


def _own_services(objects: list[dict[str, Any]]) -> list[OwnService]:
    job_labels = _job_labels(objects)
    owned = []
    for service in objects:
        if service.get("kind") != "Service":
            continue
        labels = labels_of(service)
        jobs = {name_of(service)} | {labels[key] for key in job_labels if key in labels}
        ref = object_ref(service)
        owned.append(OwnService(ref, namespace_of(service), name_of(service), frozenset(jobs)))
    return owned


def scrape_targets(objects: list[dict[str, Any]]) -> list[Target]:
    """Every target a ServiceMonitor or PodMonitor of the build scrapes, with its labels."""
    services = [obj for obj in objects if obj.get("kind") == "Service"]
    templates = pod_templates(objects)
    targets = []
    for monitor in objects:
        kind, spec = monitor.get("kind"), mapping(monitor.get("spec"))
        namespaces = monitored_namespaces(monitor)
        job_label = str(spec.get("jobLabel") or "")
        if kind == "ServiceMonitor":
            for service in services:
                inside = namespaces is None or namespace_of(service) in namespaces
                if inside and matches_selector(spec.get("selector"), labels_of(service)):
                    job = labels_of(service).get(job_label) or name_of(service)
                    targets.append(Target(namespace_of(service), job, name_of(service)))
        elif kind == "PodMonitor":
            default = f"{namespace_of(monitor)}/{name_of(monitor)}"
            for namespace in namespaces or {t.namespace for t in templates}:
                for template in selected_templates(templates, namespace, spec.get("selector")):
                    job = template.labels.get(job_label) or default
                    targets.append(Target(namespace, job, None))
    return targets


def _all_match(matchers: Iterable[Matcher], value: str | None) -> bool:
    return all(value is not None and matcher.matches(value) for matcher in matchers)


def _named_services(selector: Selector, services: list[OwnService]) -> list[OwnService]:
    jobs, names = selector.positive("job"), selector.positive("service")
    namespaces = selector.positive("namespace")
    return [
        service
        for service in services
        if _all_match(namespaces, service.namespace)
        and _all_match(names, service.name)
        and all(any(m.matches(job) for job in service.jobs) for m in jobs)
    ]


def _scraped(selector: Selector, targets: list[Target]) -> bool:
    return any(
        _all_match(selector.positive("namespace"), target.namespace)
        and _all_match(selector.positive("job"), target.job)
        and _all_match(selector.positive("service"), target.service)
        for target in targets
    )


def _is_service_metric(selector: Selector) -> bool:
    metric = selector.metric
    if metric is None or ":" in metric or metric.startswith(EXPORTER_PREFIXES):
        return False
    return bool(selector.positive("job") or selector.positive("service"))


def _describe(selector: Selector) -> str:
    shown = [m for m in selector.matchers if m.label in ("namespace", "service", "job")]
    return ",".join(f'{m.label}{m.operator}"{m.value}"' for m in shown)


def _why(named: list[OwnService], targets: list[Target]) -> str:
    jobs = sorted(
        {
            target.job
            for target in targets
            for service in named
            if (target.namespace, target.service) == (service.namespace, service.name)
        }
    )
    if jobs:  # scraped, under a job name the query does not ask for (a ServiceMonitor jobLabel)
        return f"its series are scraped as job {', '.join(map(repr, jobs))}, not that one"
    return "no ServiceMonitor or PodMonitor of this build scrapes it"


def _slo_findings(
    slo: ResolvedSLO, services: list[OwnService], targets: list[Target]
) -> Iterator[Finding]:
    reported: set[str] = set()
    for field, attribute in QUERY_FIELDS:
        query = getattr(slo, attribute)
        if query is None:
            continue
        try:
            selectors = vector_selectors(query.render(SAMPLE_WINDOW))
        except ValueError:
            continue  # promtool reports an unreadable query in the "slo rules" check
        for selector in selectors:
            if not _is_service_metric(selector) or selector.metric in reported:
                continue
            named = _named_services(selector, services)
            if not named or _scraped(selector, targets):
                continue
            assert selector.metric is not None  # _is_service_metric checked it
            reported.add(selector.metric)
            refs = ", ".join(service.ref for service in named)
            yield Finding(
                rule=RULE.id,
                severity=RULE.severity,
                object=f'SLO "{slo.name}"',
                source=slo.source,
                path=f"$.{field}",
                message=f'SLO "{slo.name}" reads {selector.metric}{{{_describe(selector)}}} '
                f"of {refs}, but {_why(named, targets)}: the SLO has no data and its alerts "
                "cannot fire",
                reason=RULE.reason,
            )


def evaluate_slo(objects: list[dict[str, Any]], slo_file: Path) -> tuple[list[Finding], str]:
    """Check the service's SLO against one build; return the findings and what was checked."""
    if not slo_file.is_file():
        return [], "no SLO"
    try:
        slos = resolve_sources({slo_file.name: slo_file.read_text(encoding="utf-8")}, _OPTIONS)
    except (InvalidSpecError, UnicodeDecodeError):
        return [], f"{slo_file.name} not read (see the slo rules check)"
    services, targets = _own_services(objects), scrape_targets(objects)
    findings = [finding for slo in slos for finding in _slo_findings(slo, services, targets)]
    return findings, f"{len(slos)} SLO{'s' * (len(slos) != 1)}"
