"""Semantic rules: what the API server would refuse, or what it accepts but cannot work.

Schema validation sees one object at a time; these rules compare the objects of one
kustomize build with each other: a request above its limit (refused), a Service or a
PodDisruptionBudget selecting no pod, a probe or Service aimed at a port the container does
not have, an autoscaler scaling nothing, a ServiceMonitor scraping nothing. Every finding
is an error naming the object (``Kind/namespace/name``) and the field (a JSONPath).
The SLO rule is in :mod:`portal.review.semantics_slo`, committed machine paths in
:mod:`portal.review.local_paths`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from portal.cost.quantity import parse_quantity
from portal.integrations.kubernetes import Finding, Severity, object_ref, object_source, pod_spec
from portal.review.policy import Rule
from portal.review.selectors import (
    PodTemplate,
    container_port_names,
    container_port_numbers,
    labels_of,
    mapping,
    matches_selector,
    monitored_namespaces,
    name_of,
    namespace_of,
    pod_templates,
    port_reference,
    selected_templates,
    sequence,
    service_port_names,
)
from portal.review.semantics_slo import evaluate_slo

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
PROBE_HANDLERS = ("httpGet", "tcpSocket", "grpc")

RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            id="request-above-limit",
            severity=Severity.ERROR,
            title="Requests at most the limits",
            reason="The API server refuses a container whose request is above its limit "
            "(spec...resources.requests: must be less than or equal to the limit): the "
            "workload is never created.",
        ),
        Rule(
            id="service-selects-nothing",
            severity=Severity.ERROR,
            title="A Service selects the pods of a workload",
            reason="A Service whose selector matches no pod template has no endpoints: every "
            "request to it is refused.",
        ),
        Rule(
            id="service-target-port",
            severity=Severity.ERROR,
            title="A Service's targetPort is a port of the pods it selects",
            reason="A named targetPort the pods do not declare leaves them out of the "
            "endpoints; a number nobody listens on refuses connections.",
        ),
        Rule(
            id="probe-port",
            severity=Severity.ERROR,
            title="Probes aim at a port of their container",
            reason="A probe on a port name the container does not declare can never succeed "
            "(the kubelet cannot resolve it): the pod is never ready, or restarted forever.",
        ),
        Rule(
            id="hpa-target-missing",
            severity=Severity.ERROR,
            title="An autoscaler scales an object of the build",
            reason="A HorizontalPodAutoscaler whose scaleTargetRef names no object scales "
            "nothing, and the workload it was meant for keeps one replica.",
        ),
        Rule(
            id="pdb-selects-nothing",
            severity=Severity.ERROR,
            title="A PodDisruptionBudget selects pods",
            reason="A budget matching no pod protects nothing: a node drain may evict every "
            "replica at once.",
        ),
        Rule(
            id="networkpolicy-selects-nothing",
            severity=Severity.ERROR,
            title="A NetworkPolicy selects pods",
            reason="A NetworkPolicy whose podSelector matches no pod restricts nothing: the "
            "pods it was written for accept every connection.",
        ),
        Rule(
            id="servicemonitor-selects-nothing",
            severity=Severity.ERROR,
            title="A ServiceMonitor selects a Service",
            reason="Prometheus scrapes only the Services a ServiceMonitor selects: matching "
            "none, the service's metrics, SLO and alerts have no data.",
        ),
        Rule(
            id="servicemonitor-port",
            severity=Severity.ERROR,
            title="A ServiceMonitor endpoint names a port of its Service",
            reason="The Prometheus Operator scrapes an endpoint only on a Service port with "
            "that name: with none, nothing is scraped.",
        ),
        Rule(
            id="podmonitor-selects-nothing",
            severity=Severity.ERROR,
            title="A PodMonitor selects pods",
            reason="Prometheus scrapes only the pods a PodMonitor selects: matching none, "
            "the metrics have no data.",
        ),
    )
}


def _finding(rule_id: str, obj: Mapping[str, Any], path: str, message: str) -> Finding:
    rule = RULES[rule_id]
    return Finding(
        rule=rule.id,
        severity=rule.severity,
        object=object_ref(obj),
        source=object_source(obj),
        path=path,
        message=message,
        reason=rule.reason,
    )


def _pod_path(kind: object) -> str:
    return {"Pod": "$.spec", "CronJob": "$.spec.jobTemplate.spec.template.spec"}.get(
        str(kind), "$.spec.template.spec"
    )


def _containers(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    pod = pod_spec(obj)
    if pod is None:
        return
    base = _pod_path(obj.get("kind"))
    for key in ("initContainers", "containers"):
        for index, container in enumerate(sequence(pod.get(key))):
            if isinstance(container, Mapping):
                yield f"{base}.{key}[{index}]", container


def _label(container: Mapping[str, Any]) -> str:
    return f"container {container.get('name', '?')!r}"


def _quantity(value: object) -> Decimal | None:
    try:
        return parse_quantity(value)
    except ValueError:
        return None  # unreadable quantities fail the cost check; not this rule's to report


def _requests_above_limits(obj: Mapping[str, Any]) -> Iterator[Finding]:
    for path, container in _containers(obj):
        resources = mapping(container.get("resources"))
        requests, limits = mapping(resources.get("requests")), mapping(resources.get("limits"))
        for resource, requested in requests.items():
            if resource not in limits:
                continue  # no limit: any request is allowed
            request, limit = _quantity(requested), _quantity(limits[resource])
            if request is not None and limit is not None and request > limit:
                message = (
                    f"{_label(container)} requests {resource} {requested}, above its limit "
                    f"{limits[resource]}: the API server refuses it"
                )
                where = f"{path}.resources.requests.{resource}"
                yield _finding("request-above-limit", obj, where, message)


def _probe_ports(obj: Mapping[str, Any]) -> Iterator[Finding]:
    for path, container in _containers(obj):
        names, numbers = container_port_names(container), container_port_numbers(container)
        for probe in PROBES:
            for handler in PROBE_HANDLERS:
                action = mapping(mapping(container.get(probe)).get(handler))
                if action.get("host"):
                    continue  # probes another host: its ports are not this container's
                port = port_reference(action.get("port"))
                if isinstance(port, str) and port not in names:
                    declared = ", ".join(sorted(names)) or "none"
                    message = (
                        f"{_label(container)}: {probe} uses port {port!r}, which the container "
                        f"does not declare (its port names: {declared})"
                    )
                elif isinstance(port, int) and numbers and port not in numbers:
                    message = (
                        f"{_label(container)}: {probe} uses port {port}, which is not one of "
                        f"its containerPorts ({', '.join(map(str, sorted(numbers)))})"
                    )
                else:
                    continue
                where = f"{path}.{probe}.{handler}.port"
                yield _finding("probe-port", obj, where, message)


def _missing_target(port: int | str, template: PodTemplate) -> bool:
    if isinstance(port, str):
        return port not in template.port_names()
    numbers = template.port_numbers()
    return bool(numbers) and port not in numbers  # undeclared ports cannot be judged


def _services(objects: list[dict[str, Any]], templates: list[PodTemplate]) -> Iterator[Finding]:
    for service in objects:
        spec = mapping(service.get("spec"))
        selector = mapping(spec.get("selector"))
        if service.get("kind") != "Service" or not selector or spec.get("type") == "ExternalName":
            continue  # no selector: endpoints are managed by hand
        selected = selected_templates(templates, namespace_of(service), selector, plain=True)
        if not selected:
            pairs = ", ".join(f"{key}={value}" for key, value in selector.items())
            message = f"selector {pairs} matches no pod template in namespace " + (
                f"{namespace_of(service)!r}" if namespace_of(service) else "(none)"
            )
            yield _finding("service-selects-nothing", service, "$.spec.selector", message)
            continue
        for index, entry in enumerate(sequence(spec.get("ports"))):
            entry = mapping(entry)
            target = port_reference(entry.get("targetPort", entry.get("port")))
            if target is None:
                continue
            for template in selected:
                if _missing_target(target, template):
                    message = (
                        f"port {entry.get('name') or entry.get('port')!s} targets "
                        f"{target!r}, which the pods of {template.ref} do not declare"
                    )
                    where = f"$.spec.ports[{index}].targetPort"
                    yield _finding("service-target-port", service, where, message)


def _autoscalers(objects: list[dict[str, Any]]) -> Iterator[Finding]:
    present = {(namespace_of(obj), str(obj.get("kind")), name_of(obj)) for obj in objects}
    for hpa in objects:
        if hpa.get("kind") != "HorizontalPodAutoscaler":
            continue
        ref = mapping(mapping(hpa.get("spec")).get("scaleTargetRef"))
        kind, name = str(ref.get("kind")), str(ref.get("name"))
        if (namespace_of(hpa), kind, name) not in present:
            message = f"scaleTargetRef {kind}/{name} is not an object of this build"
            yield _finding("hpa-target-missing", hpa, "$.spec.scaleTargetRef", message)


def _selecting_pods(
    objects: list[dict[str, Any]], templates: list[PodTemplate]
) -> Iterator[Finding]:
    for obj in objects:
        kind, spec = obj.get("kind"), mapping(obj.get("spec"))
        if kind == "PodDisruptionBudget":
            rule, field, selector = "pdb-selects-nothing", "selector", spec.get("selector")
        elif kind == "NetworkPolicy":
            rule, field, selector = (
                "networkpolicy-selects-nothing",
                "podSelector",
                spec.get("podSelector"),
            )
            if selector == {}:
                continue  # an empty podSelector means every pod of the namespace
        else:
            continue
        if not selected_templates(templates, namespace_of(obj), selector):
            message = f"{field} matches no pod template in this build's namespace"
            yield _finding(rule, obj, f"$.spec.{field}", message)


def _service_monitors(objects: list[dict[str, Any]]) -> Iterator[Finding]:
    services = [obj for obj in objects if obj.get("kind") == "Service"]
    built = {namespace_of(service) for service in services}
    for monitor in objects:
        if monitor.get("kind") != "ServiceMonitor":
            continue
        namespaces = monitored_namespaces(monitor)
        if namespaces is None or not namespaces & built:
            continue  # looks outside this build: cannot be judged from it
        spec = mapping(monitor.get("spec"))
        selected = [
            service
            for service in services
            if namespace_of(service) in namespaces
            and matches_selector(spec.get("selector"), labels_of(service))
        ]
        if not selected:
            message = "selector matches no Service of this build (Services match by label)"
            yield _finding("servicemonitor-selects-nothing", monitor, "$.spec.selector", message)
            continue
        names = set().union(*(service_port_names(service) for service in selected))
        for index, endpoint in enumerate(sequence(spec.get("endpoints"))):
            port = mapping(endpoint).get("port")
            if isinstance(port, str) and port not in names:
                refs = ", ".join(object_ref(service) for service in selected)
                message = f"endpoint port {port!r} is not a port name of {refs}"
                where = f"$.spec.endpoints[{index}].port"
                yield _finding("servicemonitor-port", monitor, where, message)


def _pod_monitors(objects: list[dict[str, Any]], templates: list[PodTemplate]) -> Iterator[Finding]:
    built = {template.namespace for template in templates}
    for monitor in objects:
        if monitor.get("kind") != "PodMonitor":
            continue
        namespaces = monitored_namespaces(monitor)
        if namespaces is None or not namespaces & built:
            continue
        selector = mapping(monitor.get("spec")).get("selector")
        if not any(selected_templates(templates, namespace, selector) for namespace in namespaces):
            message = "selector matches no pod template of this build"
            yield _finding("podmonitor-selects-nothing", monitor, "$.spec.selector", message)


def evaluate_build(objects: list[dict[str, Any]], slo_file: Path) -> tuple[list[Finding], str]:
    """Apply the manifest rules and the SLO rule to one build; findings and what was read."""
    slo_findings, slos = evaluate_slo(objects, slo_file)
    return evaluate_manifests(objects) + slo_findings, f"{len(objects)} objects and {slos}"


def evaluate_manifests(objects: list[dict[str, Any]]) -> list[Finding]:
    """Apply every semantic rule on the objects of one build; return every finding."""
    templates = pod_templates(objects)
    findings: list[Finding] = []
    for obj in objects:
        findings.extend(_requests_above_limits(obj))
        findings.extend(_probe_ports(obj))
    findings.extend(_services(objects, templates))
    findings.extend(_autoscalers(objects))
    findings.extend(_selecting_pods(objects, templates))
    findings.extend(_service_monitors(objects))
    findings.extend(_pod_monitors(objects, templates))
    return findings
