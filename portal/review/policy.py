"""Policy rules a change must pass: each with a stable id, a severity and the reason it exists.

Rules read rendered Kubernetes objects (the output of the kustomize build) and, for the
service-level rules, the service's ``catalog-info.yaml`` and ``slo.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from portal.integrations.kubernetes import (
    Finding,
    Severity,
    hpa_targets,
    object_ref,
    object_source,
    pod_spec,
)


class Rule(BaseModel):
    """A policy rule: ``id`` is stable (referenced in findings and docs)."""

    model_config = ConfigDict(frozen=True)

    id: str
    severity: Severity
    title: str
    reason: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            id="owner-exists",
            severity=Severity.ERROR,
            title="Owner exists in the catalog",
            reason="The owning team receives the alerts and approves changes; an owner that "
            "is not in the catalog means nobody does.",
        ),
        Rule(
            id="resources-set",
            severity=Severity.ERROR,
            title="CPU and memory requests and limits on every container",
            reason="Requests let the scheduler place pods and the cost be estimated; limits "
            "stop one pod from starving its neighbours on the node.",
        ),
        Rule(
            id="probes-set",
            severity=Severity.ERROR,
            title="Liveness and readiness probes",
            reason="Without readiness, traffic reaches pods that cannot serve it; without "
            "liveness, a hung process is never restarted.",
        ),
        Rule(
            id="run-as-non-root",
            severity=Severity.ERROR,
            title="Containers run as non-root",
            reason="A process running as root turns a container escape into root on the node; "
            "runAsNonRoot: true makes the kubelet refuse to start it as root.",
        ),
        Rule(
            id="image-pinned",
            severity=Severity.ERROR,
            title="Images carry a version tag (not latest) or a digest",
            reason="With latest or no tag the same manifest runs different code over time: "
            "deploys are not reproducible and a rollback does not roll back.",
        ),
        Rule(
            id="slo-declared",
            severity=Severity.ERROR,
            title="An SLO is declared",
            reason="The SLO says what working means for users; burn-rate alerts and the error "
            "budget are generated from slo.yaml.",
        ),
        Rule(
            id="no-secret-object",
            severity=Severity.ERROR,
            title="No Secret objects with data in the repository",
            reason="Everything in the GitOps repository is readable by all its readers and "
            "stays in history forever; deliver secrets with an ExternalSecret or SealedSecret.",
        ),
        Rule(
            id="no-secret-env-value",
            severity=Severity.ERROR,
            title="No literal secret values in environment variables",
            reason="A literal password or token in an env var is a secret in git; reference a "
            "Secret with valueFrom.secretKeyRef instead.",
        ),
        Rule(
            id="hpa-no-replicas",
            severity=Severity.ERROR,
            title="No replicas on a workload scaled by an HPA",
            reason="Flux re-applies spec.replicas on every reconcile, resetting the scale the "
            "HorizontalPodAutoscaler chose.",
        ),
    )
}

# Env var names that carry credentials by convention (DB_PASSWORD, GITHUB_TOKEN, API_KEY...),
# matched as whole name parts so TOKENIZER_NAME or MAX_TOKENS of an LLM service are not.
SECRET_ENV_NAME = re.compile(
    r"(^|[_.-])(PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)($|[_.-])", re.I
)
BATCH_KINDS = frozenset({"Job", "CronJob"})


def _finding(
    rule_id: str, obj: Mapping[str, Any], path: str, message: str, source: str = ""
) -> Finding:
    rule = RULES[rule_id]
    return Finding(
        rule=rule.id,
        severity=rule.severity,
        object=object_ref(obj),
        source=object_source(obj, source),
        path=path,
        message=message,
        reason=rule.reason,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pod_path(kind: object) -> str:
    return {"Pod": "$.spec", "CronJob": "$.spec.jobTemplate.spec.template.spec"}.get(
        str(kind), "$.spec.template.spec"
    )


def _containers(pod: Mapping[str, Any], base: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield (JSON path, container) for init containers and containers."""
    for key in ("initContainers", "containers"):
        entries = pod.get(key)
        for index, container in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(container, Mapping):
                yield f"{base}.{key}[{index}]", container


def image_problem(image: object) -> str | None:
    """Say why an image reference is not pinned, or return None when it is.

    A digest pins the image whatever the tag says; otherwise the tag must exist and not be
    ``latest``. The tag is looked for after the last ``/`` so a registry port is not one.
    """
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    name, _, digest = image.partition("@")
    if digest:
        return None
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if not tag:
        return f"image {image!r} has no tag (Kubernetes pulls latest)"
    if tag.lower() == "latest":
        return f"image {image!r} uses the latest tag"
    return None


def _check_container(
    obj: Mapping[str, Any], pod: Mapping[str, Any], path: str, container: Mapping[str, Any]
) -> Iterator[Finding]:
    label = f"container {container.get('name', '?')!r}"
    resources = _mapping(container.get("resources"))
    missing = [
        f"{kind}.{resource}"
        for kind in ("requests", "limits")
        for resource in ("cpu", "memory")
        if _mapping(resources.get(kind)).get(resource) in (None, "")
    ]
    if missing:
        message = f"{label} sets no {', '.join(missing)}"
        yield _finding("resources-set", obj, f"{path}.resources", message)

    pod_security = _mapping(pod.get("securityContext"))
    security = _mapping(container.get("securityContext"))
    # The container's setting overrides the pod's, in both directions.
    non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
    user = security.get("runAsUser", pod_security.get("runAsUser"))
    if non_root is not True:
        message = f"{label} may run as root: set runAsNonRoot: true on the pod or container"
        yield _finding("run-as-non-root", obj, f"{path}.securityContext.runAsNonRoot", message)
    elif user == 0:
        message = f"{label} sets runAsUser: 0, which runAsNonRoot forbids (it will not start)"
        yield _finding("run-as-non-root", obj, f"{path}.securityContext.runAsUser", message)

    problem = image_problem(container.get("image"))
    if problem:
        yield _finding("image-pinned", obj, f"{path}.image", f"{label}: {problem}")

    env = container.get("env")
    for index, variable in enumerate(env if isinstance(env, list) else []):
        name, value = _mapping(variable).get("name"), _mapping(variable).get("value")
        if isinstance(name, str) and SECRET_ENV_NAME.search(name) and value not in (None, ""):
            message = f"{label} sets {name} to a literal value: use valueFrom.secretKeyRef"
            yield _finding("no-secret-env-value", obj, f"{path}.env[{index}].value", message)


def _check_probes(obj: Mapping[str, Any], pod: Mapping[str, Any], base: str) -> Iterator[Finding]:
    # Batch pods run to completion (probes make no sense); init containers cannot have probes.
    if obj.get("kind") in BATCH_KINDS:
        return
    containers = pod.get("containers")
    for index, container in enumerate(containers if isinstance(containers, list) else []):
        container = _mapping(container)
        missing = [p for p in ("livenessProbe", "readinessProbe") if not container.get(p)]
        if missing:
            message = f"container {container.get('name', '?')!r} has no {' and no '.join(missing)}"
            yield _finding("probes-set", obj, f"{base}.containers[{index}]", message)


def evaluate_objects(objects: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Apply the object rules to rendered manifests and return every finding."""
    objects = list(objects)
    scaled = hpa_targets(objects)
    findings: list[Finding] = []
    for obj in objects:
        kind = obj.get("kind")
        metadata, spec = _mapping(obj.get("metadata")), _mapping(obj.get("spec"))
        for field in ("data", "stringData") if kind == "Secret" else ():
            if obj.get(field):
                message = f"Secret with {field} in the repository: use an ExternalSecret instead"
                findings.append(_finding("no-secret-object", obj, f"$.{field}", message))
        target = (str(metadata.get("namespace") or ""), str(kind), str(metadata.get("name")))
        if target in scaled and spec.get("replicas") is not None:
            message = f"replicas: {spec['replicas']} is set but an HPA scales this {kind}"
            findings.append(_finding("hpa-no-replicas", obj, "$.spec.replicas", message))
        pod = pod_spec(obj)
        if pod is None:
            continue
        base = _pod_path(kind)
        for path, container in _containers(pod, base):
            findings.extend(_check_container(obj, pod, path, container))
        findings.extend(_check_probes(obj, pod, base))
    return findings


def _load_documents(path: Path) -> tuple[list[Any], str | None]:
    """Return the YAML documents of a file, or an error naming the file and line."""
    if not path.is_file():
        return [], f"{path.name} is missing"
    try:
        with path.open(encoding="utf-8") as stream:
            return [doc for doc in yaml.safe_load_all(stream) if doc is not None], None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        return [], f"{path.name}{where} is not valid YAML: {getattr(error, 'problem', error)}"


def _file_finding(rule_id: str, path: Path, message: str, where: str = "$") -> Finding:
    rule = RULES[rule_id]
    return Finding(
        rule=rule.id,
        severity=rule.severity,
        object=path.name,
        source=path.name,
        path=where,
        message=message,
        reason=rule.reason,
    )


def _check_owner(catalog_info: Path, owner_exists: Callable[[str], bool]) -> list[Finding]:
    documents, error = _load_documents(catalog_info)
    if error:
        return [_file_finding("owner-exists", catalog_info, error)]
    findings: list[Finding] = []
    owned = 0
    for document in documents:
        owner = _mapping(_mapping(document).get("spec")).get("owner")
        if owner is None:
            continue
        owned += 1
        if not isinstance(owner, str) or not owner_exists(owner):
            entity = _mapping(document)
            message = f"owner {owner!r} is not a group or user in the catalog"
            source = catalog_info.name
            findings.append(_finding("owner-exists", entity, "$.spec.owner", message, source))
    if not owned:
        message = f"{catalog_info.name} declares no spec.owner"
        findings.append(_file_finding("owner-exists", catalog_info, message))
    return findings


def count_slos(documents: Iterable[Any]) -> int:
    """Count SLOs with a name and an objective in Sloth specs (plain or Kubernetes CRD form)."""
    total = 0
    for document in documents:
        document = _mapping(document)
        slos = document.get("slos", _mapping(document.get("spec")).get("slos"))
        for slo in slos if isinstance(slos, list) else []:
            slo = _mapping(slo)
            total += bool(slo.get("name")) and slo.get("objective") is not None
    return total


def _check_slo(slo: Path) -> list[Finding]:
    documents, error = _load_documents(slo)
    if error:
        return [_file_finding("slo-declared", slo, error)]
    if count_slos(documents) == 0:
        message = f"{slo.name} declares no SLO (a slos entry with a name and an objective)"
        return [_file_finding("slo-declared", slo, message, "$.slos")]
    return []


def evaluate_service_files(
    *,
    owner_exists: Callable[[str], bool],
    catalog_info: Path | None = None,
    slo: Path | None = None,
) -> list[Finding]:
    """Apply the service-level rules; a file passed as None is not checked.

    ``owner_exists`` receives ``spec.owner`` exactly as written (``group:team-a``, ``team-a``).
    """
    findings: list[Finding] = []
    if catalog_info is not None:
        findings.extend(_check_owner(catalog_info, owner_exists))
    if slo is not None:
        findings.extend(_check_slo(slo))
    return findings


def evaluate_policy(
    objects: Iterable[Mapping[str, Any]],
    *,
    owner_exists: Callable[[str], bool],
    catalog_info: Path | None = None,
    slo: Path | None = None,
) -> list[Finding]:
    """Apply every rule: object rules on ``objects`` plus the service-level rules."""
    return evaluate_objects(objects) + evaluate_service_files(
        owner_exists=owner_exists, catalog_info=catalog_info, slo=slo
    )
