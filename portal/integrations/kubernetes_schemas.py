"""Schema validation of rendered Kubernetes objects: built-in kinds and Flux/Prometheus CRDs.

Built-in kinds use the schemas kubernetes-validate ships for a pinned Kubernetes version;
removed and deprecated API versions are errors. Custom resources are checked against the
JSON schemas copied into ``portal/review/crd_schemas``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv_utils  # type: ignore[import-untyped]
from jsonschema.protocols import Validator
from referencing import Registry, Resource

from portal.integrations.kubernetes import (
    CRD_SCHEMA_DIR,
    MESSAGE_LIMIT,
    PINNED_KUBERNETES_VERSION,
    Finding,
    KubernetesToolError,
    Severity,
    object_ref,
    object_source,
)


def _minor(version: str) -> tuple[int, int]:
    match = re.match(r"^v?(\d+)\.(\d+)", version)
    if not match:
        raise KubernetesToolError(f"not a Kubernetes version: {version!r}")
    return int(match.group(1)), int(match.group(2))


@functools.cache
def _schema_dir(k8s_version: str) -> Traversable:
    # kubernetes-validate uses the newest shipped schema not newer than the wanted version;
    # compare as numbers (its own helper compares strings, so "1.4" > "1.33").
    wanted = _minor(k8s_version)
    shipped = [version for version in kv_utils.all_versions() if _minor(version) <= wanted]
    if not shipped or wanted > _minor(kv_utils.latest_version()):
        raise KubernetesToolError(
            f"kubernetes-validate has no schemas for Kubernetes {k8s_version}"
        )
    return files("kubernetes_validate") / "kubernetes-json-schema" / f"v{shipped[-1]}-local-strict"


@functools.cache
def _definitions(k8s_version: str) -> dict[str, Any]:
    return dict(json.loads((_schema_dir(k8s_version) / "_definitions.json").read_text()))


GVK = tuple[str, str, str]


@functools.cache
def served_kinds(k8s_version: str) -> dict[GVK, str]:
    """(group, version, kind) served by that Kubernetes version -> its definition name."""
    served: dict[GVK, str] = {}
    for name, definition in _definitions(k8s_version)["$defs"].items():
        # Meta types (DeleteOptions, WatchEvent) claim every group version ever shipped.
        if name.startswith("io.k8s.apimachinery.") or name.endswith("List"):
            continue
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            served[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return served


def _schema_stem(group: str, version: str, kind: str) -> str:
    # kubernetes-validate's file naming: deployment-apps-v1, ingress-networking-v1, service-v1.
    short = group.split(".")[0]
    return f"{kind.lower()}-{short}-{version}" if short else f"{kind.lower()}-{version}"


@functools.cache
def _builtin_validator(k8s_version: str, group: str, version: str, kind: str) -> Validator:
    # The same set-up as kubernetes_validate.validate(strict=True), kept once per kind: its
    # validate() re-reads 1.4 MB of definitions per object and stops at the first error.
    directory = _schema_dir(k8s_version)
    schema = json.loads((directory / f"{_schema_stem(group, version, kind)}.json").read_text())
    registry: Registry[Any] = Resource.from_contents(_definitions(k8s_version)) @ Registry()
    registry = Resource.from_contents(schema) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


@functools.cache
def _crd_validator(schema_path: Path) -> Validator:
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    # The API server silently prunes unknown top-level fields of a custom resource (a
    # misspelled ``spec``): strict like built-ins, so the typo is an error, not lost intent.
    if "properties" in schema:
        schema = {**schema, "additionalProperties": False}
    validator: Validator = jsonschema.Draft7Validator(schema)  # datree schemas name no draft
    return validator


@functools.cache
def _crd_versions(crd_schema_dir: Path) -> dict[tuple[str, str], list[str]]:
    """(group, lowercased kind) -> versions with a schema file."""
    known: dict[tuple[str, str], list[str]] = {}
    for path in sorted(crd_schema_dir.glob("*/*_*.json")):
        kind, _, version = path.stem.rpartition("_")
        known.setdefault((path.parent.name, kind), []).append(version)
    return known


def _is_prerelease(version: str) -> bool:
    return "alpha" in version or "beta" in version


def _version_key(version: str) -> tuple[int, int, int]:
    match = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", version)
    if not match:
        return (0, 0, 0)
    stage = {"alpha": 0, "beta": 1, None: 2}[match.group(2)]
    return (int(match.group(1)), stage, int(match.group(3) or 0))


def _errors(validator: Validator, obj: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield (JSON path, message) for every schema error, unknown fields named one by one."""
    for error in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.path]):
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            for key in sorted(set(error.instance) - set(known)):
                yield f"{error.json_path}.{key}", f"unknown field {key!r}"
            continue
        message = error.message
        if len(message) > MESSAGE_LIMIT:
            message = message[:MESSAGE_LIMIT] + "..."
        yield error.json_path, message


def validate_objects(
    objects: Iterable[Mapping[str, Any]],
    k8s_version: str = PINNED_KUBERNETES_VERSION,
    *,
    source: str = "",
    crd_schema_dir: Path = CRD_SCHEMA_DIR,
) -> list[Finding]:
    """Validate rendered objects strictly; removed and deprecated API versions are errors.

    Built-in kinds use kubernetes-validate's strict schemas for ``k8s_version``; custom
    resources use ``crd_schema_dir/<group>/<kind>_<version>.json``. A custom resource with no
    schema is a warning (not validated). ``source`` names objects without an origin annotation.
    """
    return [
        Finding(
            severity=severity,
            rule=rule,
            object=object_ref(obj),
            source=object_source(obj, source),
            path=path,
            message=message,
        )
        for obj in objects
        for severity, rule, path, message in _check_object(obj, k8s_version, crd_schema_dir)
    ]


_Problem = tuple[Severity, str, str, str]  # severity, rule, JSON path, message


def _check_object(
    obj: Mapping[str, Any], k8s_version: str, crd_schema_dir: Path
) -> Iterator[_Problem]:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not (isinstance(api_version, str) and api_version and isinstance(kind, str) and kind):
        yield Severity.ERROR, "not-an-object", "$", "apiVersion and kind are required"
        return
    group, _, version = api_version.rpartition("/")
    served = served_kinds(k8s_version)
    crd_schema = crd_schema_dir / group / f"{kind.lower()}_{version}.json"
    validator: Validator
    if (group, version, kind) in served:
        for severity, rule, message in _lifecycle(k8s_version, group, version, kind):
            yield severity, rule, "$.apiVersion", message
        validator = _builtin_validator(k8s_version, group, version, kind)
    elif "." not in group or group in {served_group for served_group, _, _ in served}:
        # CRD groups must contain a dot, so this is a built-in API the version does not serve.
        message = _removed_message(k8s_version, group, version, kind)
        yield Severity.ERROR, "api-removed", "$.apiVersion", message
        return
    elif crd_schema.is_file():
        validator = _crd_validator(crd_schema)
    elif versions := _crd_versions(crd_schema_dir).get((group, kind.lower())):
        known = ", ".join(f"{group}/{known_version}" for known_version in versions)
        message = f"{api_version} {kind} is not a supported version (deprecated?): use {known}"
        yield Severity.ERROR, "crd-version", "$.apiVersion", message
        return
    else:
        message = f"no schema for {api_version} {kind}: the object is not validated"
        yield Severity.WARNING, "unknown-crd", "$.apiVersion", message
        return
    for path, message in _errors(validator, obj):
        yield Severity.ERROR, "schema", path, message


def _api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _lifecycle(
    k8s_version: str, group: str, version: str, kind: str
) -> Iterator[tuple[Severity, str, str]]:
    # Deprecated: Kubernetes' own "Deprecated:" note on the kind, or a stable version of the
    # same kind is served (a beta is deprecated once its stable version ships).
    served = served_kinds(k8s_version)
    api_version = _api_version(group, version)
    definition = _definitions(k8s_version)["$defs"][served[(group, version, kind)]]
    note = re.search(r"Deprecated: ([^\n]*)", definition.get("description", ""))
    if note:
        yield Severity.ERROR, "api-deprecated", f"{api_version} {kind} is deprecated: {note[1]}"
        return
    if not _is_prerelease(version):
        return
    stable = [v for g, v, k in served if g == group and k == kind and not _is_prerelease(v)]
    if stable:
        replacement = _api_version(group, max(stable, key=_version_key))
        message = f"{api_version} {kind} is deprecated in Kubernetes {k8s_version}: use "
        yield Severity.ERROR, "api-deprecated", message + replacement
    elif "alpha" in version:
        message = f"{api_version} {kind} is an alpha API (off by default, not on managed clusters)"
        yield Severity.WARNING, "api-alpha", message


def _removed_message(k8s_version: str, group: str, version: str, kind: str) -> str:
    message = f"{_api_version(group, version)} {kind} is not served by Kubernetes {k8s_version}"
    stable = [
        (g, v) for g, v, k in served_kinds(k8s_version) if k == kind and not _is_prerelease(v)
    ]
    if stable:
        # Prefer the same group (autoscaling/v2 for autoscaling/v2beta2), then the newest.
        best = max(stable, key=lambda gv: (gv[0] == group, _version_key(gv[1])))
        message += f"; use {_api_version(*best)}"
    return message
