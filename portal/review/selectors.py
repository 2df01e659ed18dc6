"""What rendered objects select: pod templates, Services, label selectors and named ports.

The semantic checks compare objects of one kustomize build with each other (a Service with
the pods it selects, a ServiceMonitor with its Services). This module reads the pieces
they share, tolerating any shape: a malformed object selects nothing rather than crashing
(the schema check reports the shape itself).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from portal.integrations.kubernetes import object_ref, pod_spec

# Kinds whose pods carry the labels of a template (Pod: its own metadata).
WORKLOAD_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
)


def mapping(value: object) -> Mapping[str, Any]:
    """Return ``value`` when it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def sequence(value: object) -> list[Any]:
    """Return ``value`` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def namespace_of(obj: Mapping[str, Any]) -> str:
    """Return the object's namespace ('' when kustomize set none)."""
    return str(mapping(obj.get("metadata")).get("namespace") or "")


def name_of(obj: Mapping[str, Any]) -> str:
    """Return the object's name ('' when missing)."""
    return str(mapping(obj.get("metadata")).get("name") or "")


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """Return the object's own labels as strings."""
    labels = mapping(mapping(obj.get("metadata")).get("labels"))
    return {str(key): str(value) for key, value in labels.items()}


def _template_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    spec = mapping(obj.get("spec"))
    if obj.get("kind") == "Pod":
        return labels_of(obj)
    if obj.get("kind") == "CronJob":
        spec = mapping(mapping(spec.get("jobTemplate")).get("spec"))
    return labels_of(mapping(spec.get("template")))


@dataclass(frozen=True)
class PodTemplate:
    """The pods one workload creates: where, with which labels, and which container ports."""

    ref: str
    namespace: str
    labels: dict[str, str]
    spec: Mapping[str, Any]

    def containers(self) -> Iterator[Mapping[str, Any]]:
        """Yield init containers and containers (a sidecar init container serves ports too)."""
        for key in ("initContainers", "containers"):
            for container in sequence(self.spec.get(key)):
                if isinstance(container, Mapping):
                    yield container

    def port_names(self) -> set[str]:
        """Names of every container port of the pod."""
        return {name for container in self.containers() for name in container_port_names(container)}

    def port_numbers(self) -> set[int]:
        """Numbers of every container port of the pod."""
        return {
            number
            for container in self.containers()
            for number in container_port_numbers(container)
        }


def pod_templates(objects: list[dict[str, Any]]) -> list[PodTemplate]:
    """Return the pod template of every workload of the build."""
    templates = []
    for obj in objects:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        spec = pod_spec(obj)
        if spec is None:
            continue
        labels = _template_labels(obj)
        templates.append(PodTemplate(object_ref(obj), namespace_of(obj), labels, spec))
    return templates


def container_port_names(container: Mapping[str, Any]) -> set[str]:
    """Names of a container's ports."""
    return {
        str(port["name"])
        for port in sequence(container.get("ports"))
        if isinstance(port, Mapping) and port.get("name")
    }


def container_port_numbers(container: Mapping[str, Any]) -> set[int]:
    """Numbers (containerPort) of a container's ports."""
    numbers = set()
    for port in sequence(container.get("ports")):
        number = mapping(port).get("containerPort")
        if isinstance(number, int) and not isinstance(number, bool):
            numbers.add(number)
    return numbers


def port_reference(value: object) -> int | str | None:
    """Read an IntOrString port: a number, a name, or None when absent or not a port."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        return int(value) if value.isdigit() else value
    return None


def matches_map(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Match a plain map selector (a Service's ``spec.selector``): every pair must be present."""
    return all(labels.get(str(key)) == str(value) for key, value in selector.items())


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = str(expression.get("key")), expression.get("operator")
    values = {str(value) for value in sequence(expression.get("values"))}
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False  # the API server refuses any other operator


def matches_selector(selector: object, labels: Mapping[str, str]) -> bool:
    """Match a LabelSelector (``matchLabels`` and ``matchExpressions``).

    An empty selector ``{}`` matches everything; a missing (null) one, nothing: the meaning
    the PodDisruptionBudget, NetworkPolicy and ServiceMonitor APIs give them.
    """
    if not isinstance(selector, Mapping):
        return False
    if not matches_map(mapping(selector.get("matchLabels")), labels):
        return False
    return all(
        _expression_matches(mapping(expression), labels)
        for expression in sequence(selector.get("matchExpressions"))
    )


def selected_templates(
    templates: list[PodTemplate], namespace: str, selector: object, *, plain: bool = False
) -> list[PodTemplate]:
    """Pod templates of ``namespace`` that ``selector`` selects (``plain``: a map selector)."""
    return [
        template
        for template in templates
        if template.namespace == namespace
        and (
            matches_map(mapping(selector), template.labels)
            if plain
            else matches_selector(selector, template.labels)
        )
    ]


def monitored_namespaces(monitor: Mapping[str, Any]) -> set[str] | None:
    """Namespaces a ServiceMonitor or PodMonitor looks in; None for ``any: true`` (all)."""
    chooser = mapping(mapping(monitor.get("spec")).get("namespaceSelector"))
    if chooser.get("any") is True:
        return None
    names = {str(name) for name in sequence(chooser.get("matchNames"))}
    return names or {namespace_of(monitor)}


def service_port_names(service: Mapping[str, Any]) -> set[str]:
    """Names of a Service's ports."""
    ports = sequence(mapping(service.get("spec")).get("ports"))
    return {str(port["name"]) for port in ports if isinstance(port, Mapping) and port.get("name")}
