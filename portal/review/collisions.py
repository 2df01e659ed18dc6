"""Objects that collide in one cluster build: the ``collisions`` review check.

A cluster build is what Flux applies to one cluster: the root Kustomization's folder
``clusters/<env>/`` (every manifest below it, as the kustomization Flux generates for a
folder without one takes them), then what each Flux Kustomization defined there applies
from the cluster's own ``flux-system`` GitRepository: a folder of ``infrastructure/`` built
with kustomize, and the overlay of the service under review (already built by its
``kustomize`` check). Other services' overlays are not built: their names are refused when
they are scaffolded, and each has its own review.

Two objects with the same API group, kind, namespace and name in one build collide. Inside
the root folder Flux refuses the whole build ("may not add resource with an already
registered id"), which stops every sync of the cluster; across two Kustomizations each
overwrites the other, and pruning one deletes the other's object. A Namespace of the
service named like a Kubernetes system namespace (or Flux's) relabels the cluster's own.
"""

from __future__ import annotations

import copy
import hashlib
import posixpath
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.catalog.parse import read_yaml_stream
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_tree import TreeFiles, read_files
from portal.integrations.kubernetes import (
    Finding,
    KubectlNotFoundError,
    KubernetesToolError,
    Severity,
    kustomize_build,
    object_ref,
    object_source,
)
from portal.review.flux_substitute import substituted, substitutions

KUBERNETES_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
KUBERNETES_PREFIX = "kube-"  # Kubernetes reserves the prefix for its own namespaces
FLUX_NAMESPACE = "flux-system"
FLUX_SOURCE = "flux-system"  # the GitRepository `flux bootstrap` names after its namespace
PLATFORM_NAMES = {
    FLUX_NAMESPACE: "is Flux's namespace and the name of each cluster's root Kustomization",
    "monitoring": "is the namespace of the platform's monitoring stack",
    "infrastructure": "is the name of each cluster's infrastructure Kustomization",
}
_KUSTOMIZE_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
# Kinds kustomize (and Flux's targetNamespace) never put in a namespace.
_CLUSTER_SCOPED = frozenset(
    {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    | {"PersistentVolume", "StorageClass", "PriorityClass", "IngressClass", "RuntimeClass"}
    | {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService"}
)
RULE = "object-collision"
CLUSTER_FOLDERS = ("clusters", "infrastructure")


def system_namespace_reason(name: str) -> str | None:
    """Say why ``name`` belongs to Kubernetes or Flux as a namespace, or None."""
    if name in KUBERNETES_NAMESPACES or name.startswith(KUBERNETES_PREFIX):
        return "is a Kubernetes system namespace"
    if name == FLUX_NAMESPACE:
        return "is Flux's own namespace"
    return None


@dataclass(frozen=True)
class Placed:
    """One object of a cluster build, with the file it comes from and who applies it."""

    key: tuple[str, str, str, str]  # API group, kind, namespace, name
    ref: str
    source: str
    applier: str


def object_key(obj: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    """Identify an object as Kubernetes does (group, kind, namespace, name); None: no object."""
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    api_version, kind, name = obj.get("apiVersion"), obj.get("kind"), metadata.get("name")
    if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(name, str)):
        return None
    group = api_version.rpartition("/")[0]
    return group, kind, str(metadata.get("namespace") or ""), name


def is_kustomize_config(path: str, obj: Mapping[str, Any]) -> bool:
    """Tell a kustomize build file (``kustomization.yaml``, a Component) from an object."""
    api_version = str(obj.get("apiVersion") or "")
    if api_version.startswith("kustomize.config.k8s.io/"):
        return True
    return posixpath.basename(path) in _KUSTOMIZE_FILES and not api_version


def manifest_objects(path: str, data: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """Read the objects of one manifest file; the second item says why reading stopped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return [], f"not UTF-8 text ({error.reason} at byte {error.start})"
    result = read_yaml_stream(text)
    objects = [
        document.data
        for document in result.documents
        if isinstance(document.data, dict) and not is_kustomize_config(path, document.data)
    ]
    problem = None
    if result.error is not None:
        line = f" (line {result.error_line})" if result.error_line else ""
        problem = f"{result.error}{line}"
    return objects, problem


def _error(ref: str, source: str, message: str, path: str = "") -> Finding:
    return Finding(
        severity=Severity.ERROR, rule=RULE, object=ref, source=source, path=path, message=message
    )


class _ClusterBuild:
    """The objects of one environment's cluster build, gathered layer by layer."""

    def __init__(self, env: str, files: Mapping[str, bytes], builder: _Builder) -> None:
        self.env = env
        self.root = f"clusters/{env}"
        self.files = files
        self.builder = builder
        self.placed: list[Placed] = []
        self.findings: list[Finding] = []

    def root_objects(self) -> Iterator[tuple[str, dict[str, Any]]]:
        applier = f"the {self.env} cluster's root Kustomization"
        for path in sorted(self.files):
            if not path.startswith(f"{self.root}/") or not path.endswith((".yaml", ".yml")):
                continue
            objects, problem = manifest_objects(path, self.files[path])
            if problem is not None:
                self.findings.append(_error(path, path, f"{path} cannot be read: {problem}"))
            for obj in objects:
                self.place(obj, path, applier)
                yield path, obj

    def place(self, obj: Mapping[str, Any], source: str, applier: str) -> None:
        key = object_key(obj)
        if key is not None:
            self.placed.append(Placed(key, object_ref(obj), source, applier))

    def apply(
        self,
        kustomization: Mapping[str, Any],
        source: str,
        service: str,
        built: Sequence[Mapping[str, Any]],
    ) -> None:
        spec = kustomization.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}
        ref = object_ref(kustomization)
        source_ref = spec.get("sourceRef")
        source_ref = source_ref if isinstance(source_ref, Mapping) else {}
        if source_ref.get("kind", "GitRepository") != "GitRepository" or (
            source_ref.get("name") != FLUX_SOURCE
        ):
            return  # another repository's folder: not in this tree
        raw_path = spec.get("path")
        path = posixpath.normpath(raw_path if isinstance(raw_path, str) and raw_path else ".")
        if path == ".." or path.startswith(("../", "/")):
            message = f"spec.path {raw_path!r} leaves the repository"
            self.findings.append(_error(ref, source, message, "spec.path"))
            return
        if path == "." or path == "clusters" or path.startswith("clusters/"):
            return  # the root folder's own files, placed already
        target = spec.get("targetNamespace")
        applier = f"Kustomization {ref.removeprefix('Kustomization/')}"
        if path == f"services/{service}/deploy/overlays/{self.env}":
            objects = [(obj, f"services/{service}/{object_source(obj)}") for obj in built]
        elif path.startswith("infrastructure/"):
            try:
                objects = [(obj, object_source(obj, path)) for obj in self.builder.build(path)]
            except KubectlNotFoundError:
                raise  # the tool is missing, not the manifests' fault: the check errs
            except KubernetesToolError as error:
                message = f"{path}, applied by {applier}, does not build: {error}"
                self.findings.append(_error(ref, source, message, "spec.path"))
                return
        else:
            return  # another service's overlay: refused at scaffold time, reviewed on its own
        variables = substitutions(spec)
        for obj, origin in objects:
            obj = substituted(obj, variables)
            if isinstance(target, str) and target and obj.get("kind") not in _CLUSTER_SCOPED:
                obj = {**obj, "metadata": {**obj.get("metadata", {}), "namespace": target}}
            self.place(obj, origin, applier)


# Builds of infrastructure/ folders, shared by the changes of this process: every change of
# a repository carries the same infrastructure/ (a change writes its service and its Flux
# wiring), and building it took 1.6 s of a change's 4.7 s of checks. Keyed by the digest
# of every file under infrastructure/, which is all such a build reads (kustomize's
# default load restrictor keeps a build inside its tree; the seed's and Flux's reference
# layouts refer from infrastructure/ to infrastructure/ only).
MAX_KEPT_BUILDS = 64
_BUILDS: OrderedDict[tuple[str, str, str], list[dict[str, Any]]] = OrderedDict()
_BUILDS_LOCK = threading.Lock()


class _Builder:
    """Builds folders of the tree with kustomize, writing the tree to disk once, on demand."""

    def __init__(self, files: Mapping[str, bytes], kubectl: Path | None) -> None:
        self.files = files
        self.kubectl = kubectl
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._built: dict[str, list[dict[str, Any]]] = {}
        self._digest: str | None = None

    def build(self, path: str) -> list[dict[str, Any]]:
        if path not in self._built:
            key = (str(self.kubectl), self._infrastructure_digest(), path)
            with _BUILDS_LOCK:
                known = _BUILDS.get(key)
            if known is None:
                root = self._tree()
                if not (root / path).is_dir():
                    raise KubernetesToolError(f"{path} is not a folder of the repository")
                known = kustomize_build(root / path, relative_to=root, kubectl=self.kubectl)
                with _BUILDS_LOCK:
                    _BUILDS[key] = known
                    while len(_BUILDS) > MAX_KEPT_BUILDS:
                        _BUILDS.popitem(last=False)
            self._built[path] = copy.deepcopy(known)
        return self._built[path]

    def _infrastructure_digest(self) -> str:
        """Return a digest of every file under ``infrastructure/``: what its builds read."""
        if self._digest is None:
            digest = hashlib.sha256()
            for name in sorted(self.files):
                if name.startswith("infrastructure/"):
                    data = self.files[name]
                    digest.update(f"{name}\0{len(data)}\0".encode() + data)
            self._digest = digest.hexdigest()
        return self._digest

    def _tree(self) -> Path:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="portal-collisions-")
            root = Path(self._tmp.name)
            for name, data in self.files.items():
                parts = name.split("/")
                if name.startswith("/") or ".." in parts:
                    continue  # git never stores such a path; never write outside the folder
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
        return Path(self._tmp.name)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _collisions(build: _ClusterBuild) -> list[Finding]:
    seen: dict[tuple[str, str, str, str], Placed] = {}
    findings = []
    root_applier = f"the {build.env} cluster's root Kustomization"
    for placed in build.placed:
        first = seen.setdefault(placed.key, placed)
        if first is placed:
            continue
        if first.applier == placed.applier == root_applier:
            message = (
                f"{placed.ref} is defined twice in the {build.env} cluster's root folder, in "
                f'{first.source} and {placed.source}: Flux refuses the whole build ("may not '
                'add resource with an already registered id"), which stops every sync of the '
                "cluster"
            )
        else:
            message = (
                f"{placed.ref} is applied twice in the {build.env} cluster, by {first.applier} "
                f"({first.source}) and by {placed.applier} ({placed.source}): each overwrites "
                "the other, and pruning one deletes the other's object"
            )
        findings.append(_error(placed.ref, placed.source, message, "metadata.name"))
    return findings


def _system_namespaces(env: str, service: str, built: Sequence[Mapping[str, Any]]) -> list[Finding]:
    findings = []
    for obj in built:
        key = object_key(obj)
        if key is None or key[:2] != ("", "Namespace"):
            continue
        if (reason := system_namespace_reason(key[3])) is not None:
            source = f"services/{service}/{object_source(obj)}"
            message = (
                f"the {env} overlay declares Namespace {key[3]}, which {reason}: applying it "
                "relabels the cluster's own namespace, and pruning it would delete it"
            )
            findings.append(_error(object_ref(obj), source, message, "metadata.name"))
    return findings


def cluster_environments(files: Mapping[str, bytes]) -> list[str]:
    """Return the environments with a folder under ``clusters/`` in ``files``."""
    parts = (path.split("/") for path in files)
    return sorted({part[1] for part in parts if part[0] == "clusters" and len(part) > 2})


def find_collisions(
    files: Mapping[str, bytes],
    service: str,
    built: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    too_large: Sequence[str] = (),
    kubectl: Path | None = None,
) -> tuple[str, list[Finding]]:
    """Check every cluster build of a change's tree; return a subject and the findings.

    ``files`` are the change's ``clusters/`` and ``infrastructure/`` files, ``built`` the
    service's objects per environment (an environment that did not build is left out).
    Raises ``ValueError`` when there is no cluster folder to check against (the check
    could not run) and ``KubectlNotFoundError`` when kustomize is needed but missing.
    """
    environments = cluster_environments(files)
    if not environments:
        raise ValueError("the change's tree has no clusters/<env>/ folder to check against")
    findings = [
        _error(path, path, f"{path} is larger than the portal reads, so it was not checked")
        for path in too_large
    ]
    builder = _Builder(files, kubectl)
    count = 0
    try:
        for env in environments:
            build = _ClusterBuild(env, files, builder)
            service_objects = list(built.get(env, ()))
            for path, obj in list(build.root_objects()):
                group = str(obj.get("apiVersion") or "").rpartition("/")[0]
                if group == "kustomize.toolkit.fluxcd.io" and obj.get("kind") == "Kustomization":
                    build.apply(obj, path, service, service_objects)
            findings += build.findings + _collisions(build)
            findings += _system_namespaces(env, service, service_objects)
            count += len(build.placed)
    finally:
        builder.close()
    return f"{count} objects in the cluster builds of {', '.join(environments)}", findings


def cluster_tree(repo: GitOpsRepo, commit: str) -> TreeFiles:
    """Read a commit's ``clusters/`` and ``infrastructure/`` files, for :func:`find_collisions`.

    Every file, not only YAML: a kustomize build may need its JSON or text files.
    """
    return read_files(repo, commit, CLUSTER_FOLDERS, suffixes=None)
