"""Would Flux reconcile the service? The ``flux wiring`` review check.

A scaffold can write Flux Kustomizations that every other check passes and Flux never
applies: a ``dependsOn`` naming a Kustomization the cluster does not have (Flux waits on
it for ever), a ``spec.path`` outside the source artifact (missing from the tree, or
excluded by the repository's ``.sourceignore``: Flux answers "path not found"), or an
object of a custom resource kind no CRD in the cluster defines (the apply fails "no
matches for kind"). For each cluster ``clusters/<env>/`` of the change's tree this check
proves, for the service's Kustomizations (its ``clusters/<env>/services/<name>.yaml`` and
any Kustomization whose path is in ``services/<name>/``):

1. every ``dependsOn`` target is a Kustomization of that cluster (same namespace unless
   the entry names one);
2. every ``spec.path`` exists in the tree and is not excluded by ``.sourceignore``, for the
   repository's own GitRepository; a path in another source cannot be proven offline, which
   is a warning;
3. every kind of the service's build for that environment is built into Kubernetes, is a
   Flux kind (the cluster was bootstrapped: it has ``flux-system/``), or is defined by what
   the cluster applies: a CustomResourceDefinition in its root folder or under the path of
   one of its Kustomizations, or a HelmRelease of a chart known to install it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from portal.integrations.kubernetes import Finding, Severity, object_source
from portal.integrations.kubernetes_schemas import served_kinds
from portal.review.collisions import FLUX_SOURCE, cluster_environments, manifest_objects
from portal.review.flux_sources import (
    Cluster,
    ClusterObject,
    applied_files,
    artifact_folders,
    excluded_by,
    files_under,
    ignore_spec,
    normalised,
    read_cluster,
    repository_folder,
)

DEPENDS_RULE = "flux-depends-on"
PATH_RULE = "flux-source-path"
KIND_RULE = "flux-crd-installed"
FLUX_GROUP_SUFFIX = ".toolkit.fluxcd.io"  # every kind gotk-components.yaml installs
# HelmReleases whose charts install CRDs: a chart is never fetched, so only these names are
# trusted, each with the API group whose CRDs it ships. Kept small on purpose: a chart
# missing here makes its kinds fail, and the fix is one reviewed line.
CRD_CHARTS = {
    # Prometheus Operator with Prometheus and Grafana; ships ServiceMonitor, PrometheusRule...
    "kube-prometheus-stack": "monitoring.coreos.com",
    # The Prometheus Operator's CRDs alone, for clusters running their own Prometheus.
    "prometheus-operator-crds": "monitoring.coreos.com",
}

_Tree = tuple[Mapping[str, bytes], Sequence[str]]  # the files read, and those too large to read


@functools.cache
def builtin_kinds(k8s_version: str) -> frozenset[tuple[str, str]]:
    """Return the (API group, kind) pairs built into Kubernetes ``k8s_version``."""
    return frozenset((group, kind) for group, _version, kind in served_kinds(k8s_version))


def _finding(
    severity: Severity, rule: str, ref: str, source: str, path: str, message: str
) -> Finding:
    return Finding(
        severity=severity, rule=rule, object=ref, source=source, path=path, message=message
    )


def _ref(obj: ClusterObject) -> str:
    return f"Kustomization/{obj.namespace}/{obj.name}"


def _depends_on(kustomization: ClusterObject, cluster: Cluster) -> list[Finding]:
    known = {(obj.namespace, obj.name) for obj in cluster.kustomizations()}
    findings = []
    entries = kustomization.spec.get("dependsOn")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        name = str(_mapping(entry).get("name") or "")
        namespace = str(_mapping(entry).get("namespace") or kustomization.namespace)
        if (namespace, name) in known:
            continue
        names = sorted(obj.name for obj in cluster.kustomizations() if obj.namespace == namespace)
        message = (
            f"{kustomization.where('spec', 'dependsOn', index)}: dependsOn {name!r}, but the "
            f"{cluster.env} cluster ({cluster.root}/) has no Kustomization {namespace}/{name}; "
            f"Flux waits on it for ever. Its Kustomizations in {namespace}: "
            f"{', '.join(names) or 'none'}"
        )
        field = f"spec.dependsOn[{index}].name"
        findings.append(
            _finding(
                Severity.ERROR,
                DEPENDS_RULE,
                _ref(kustomization),
                kustomization.file,
                field,
                message,
            )
        )
    return findings


def _source_path(
    kustomization: ClusterObject, files: Mapping[str, bytes], service: str, service_dir: Path
) -> list[Finding]:
    raw = kustomization.spec.get("path")
    where = kustomization.where("spec", "path")
    source = _mapping(kustomization.spec.get("sourceRef"))
    kind, name = source.get("kind", "GitRepository"), source.get("name")
    path = normalised(raw)

    def found(severity: Severity, message: str) -> list[Finding]:
        ref = _ref(kustomization)
        return [_finding(severity, PATH_RULE, ref, kustomization.file, "spec.path", message)]

    if kind != "GitRepository" or name != FLUX_SOURCE:
        return found(
            Severity.WARNING,
            f"{where}: spec.path {raw!r} is read from {kind} {name}, not from this "
            f"repository's GitRepository flux-system: the portal cannot prove it is in that "
            "source artifact",
        )
    if path is None:
        return found(Severity.ERROR, f"{where}: spec.path {raw!r} leaves the repository")
    inside = files_under(files, path)
    prefix = f"services/{service}"
    if path == prefix or path.startswith(f"{prefix}/"):  # the change's own service folder
        folder = service_dir / path.removeprefix(prefix).lstrip("/")
        if folder.is_dir():
            inside += [
                f"{prefix}/{file.relative_to(service_dir).as_posix()}"
                for file in folder.rglob("*")
                if file.is_file()
            ]
    if not inside:
        return found(
            Severity.ERROR,
            f"{where}: spec.path {raw!r} is not a folder of the repository: Flux answers "
            "that the path was not found",
        )
    spec, lines = ignore_spec(files)
    excluded = excluded_by(spec, lines, sorted(set(inside)))
    if excluded is None:
        return []
    pattern, line = excluded
    return found(
        Severity.ERROR,
        f"{where}: spec.path {raw!r} is excluded from the source artifact by .sourceignore "
        f"{f'line {line} ' if line else ''}({pattern!r}): Flux never sees the folder",
    )


def _installed(
    cluster: Cluster, others: Sequence[ClusterObject], tree: _Tree
) -> tuple[set[tuple[str, str]], set[str], list[str]]:
    """Return the CRD (group, kind)s, the API groups of known charts, and what was not read."""
    files, too_large = tree
    objects: list[Mapping[str, Any]] = [obj.data for obj in cluster.objects]
    unread = [
        f"{path} (larger than the portal reads)" for path in files_under(too_large, cluster.root)
    ]
    artifacts = artifact_folders(cluster)
    for kustomization in others:
        folder = repository_folder(kustomization, artifacts)
        source = _mapping(kustomization.spec.get("sourceRef"))
        if folder is None:
            unread.append(f"Kustomization {kustomization.name} ({source.get('kind')} source)")
            continue
        if folder == "clusters" or folder.startswith("clusters/"):
            continue  # the root folder, read already
        read, too_large_here = applied_files(files, folder, frozenset(too_large))
        unread += [f"{path} (larger than the portal reads)" for path in too_large_here]
        for path in read:
            objects += manifest_objects(path, files[path])[0]
    crds: set[tuple[str, str]] = set()
    charts: set[str] = set()
    for obj in objects:
        spec = _mapping(obj.get("spec"))
        if obj.get("kind") == "CustomResourceDefinition":
            crds.add((str(spec.get("group")), str(_mapping(spec.get("names")).get("kind"))))
        elif obj.get("kind") == "HelmRelease":
            chart = _chart_name(obj, objects)
            if chart in CRD_CHARTS:
                charts.add(CRD_CHARTS[chart])
    return crds, charts, unread


def _chart_name(release: Mapping[str, Any], objects: Sequence[Mapping[str, Any]]) -> str:
    spec = _mapping(release.get("spec"))
    chart = _mapping(_mapping(spec.get("chart")).get("spec")).get("chart")
    if isinstance(chart, str):
        return chart
    ref = _mapping(spec.get("chartRef"))
    if ref.get("kind") != "OCIRepository":
        return ""
    for obj in objects:  # an OCI chart is named by the last segment of its URL
        url = _mapping(obj.get("spec")).get("url")
        named = _mapping(obj.get("metadata")).get("name") == ref.get("name")
        if obj.get("kind") == "OCIRepository" and named and isinstance(url, str):
            return url.rstrip("/").rpartition("/")[2]
    return ""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _kinds(
    cluster: Cluster,
    others: Sequence[ClusterObject],
    tree: _Tree,
    service: str,
    built: Sequence[Mapping[str, Any]],
    k8s_version: str,
) -> list[Finding]:
    builtin = builtin_kinds(k8s_version)
    bootstrapped = bool(files_under(tree[0], f"{cluster.root}/flux-system"))
    installed: tuple[set[tuple[str, str]], set[str], list[str]] | None = None
    findings = []
    reported: set[tuple[str, str]] = set()
    for obj in built:
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        group = api_version.rpartition("/")[0]
        if (group, kind) in builtin or (group, kind) in reported:
            continue
        if bootstrapped and group.endswith(FLUX_GROUP_SUFFIX):
            continue
        installed = installed or _installed(cluster, others, tree)
        crds, chart_groups, unread = installed
        if (group, kind) in crds or group in chart_groups:
            continue
        reported.add((group, kind))
        message = (
            f"{kind} ({api_version}) of the {cluster.env} overlay is not built into Kubernetes "
            f"{k8s_version}{'' if group.endswith(FLUX_GROUP_SUFFIX) else ' nor a Flux kind'}, "
            f"and nothing the {cluster.env} cluster applies installs it: no "
            "CustomResourceDefinition in its folder or under its Kustomizations' paths, and no "
            f"HelmRelease of {' or '.join(sorted(CRD_CHARTS))}. Flux's apply fails with "
            '"no matches for kind"'
        )
        severity = Severity.ERROR
        if unread:  # what those apply cannot be read offline: the CRD may be there
            severity = Severity.WARNING
            message += f" (unless it is in what could not be read: {', '.join(unread)})"
        source = f"services/{service}/{object_source(obj)}"
        ref = f"{kind}/{_mapping(obj.get('metadata')).get('name', '?')}"
        findings.append(_finding(severity, KIND_RULE, ref, source, "kind", message))
    return findings


def find_flux_wiring(
    files: Mapping[str, bytes],
    service: str,
    service_dir: Path,
    built: Mapping[str, Sequence[Mapping[str, Any]]],
    k8s_version: str,
    *,
    too_large: Sequence[str] = (),
) -> tuple[str, list[Finding]]:
    """Check the service's Flux wiring in every cluster of ``files``; return subject, findings.

    ``files`` is the change's tree (at least ``clusters/``, ``infrastructure/`` and the root
    ``.sourceignore``; see :func:`portal.review.flux_sources.flux_tree`), ``service_dir``
    the exported service folder, ``built`` the service's objects per environment that built,
    ``too_large`` the files of the tree left unread (a CRD there makes a missing kind a warning).
    Raises ``ValueError`` when the tree has no ``clusters/<env>/`` folder.
    """
    environments = cluster_environments(files)
    if not environments:
        raise ValueError("the change's tree has no clusters/<env>/ folder to check against")
    findings: list[Finding] = []
    checked = 0
    for env in environments:
        cluster = read_cluster(env, files)
        for path, problem in cluster.problems:
            message = f"{path} cannot be read: {problem}"
            findings.append(_finding(Severity.ERROR, PATH_RULE, path, path, "", message))
        own_file = f"{cluster.root}/services/{service}.yaml"
        prefix = f"services/{service}"
        own, others = [], []
        for kustomization in cluster.kustomizations():
            path = normalised(kustomization.spec.get("path")) or ""
            if kustomization.file == own_file or path == prefix or path.startswith(f"{prefix}/"):
                own.append(kustomization)
            else:
                others.append(kustomization)
        for kustomization in own:
            findings += _depends_on(kustomization, cluster)
            findings += _source_path(kustomization, files, service, service_dir)
        checked += len(own)
        if own and env in built:
            tree = (files, too_large)
            findings += _kinds(cluster, others, tree, service, built[env], k8s_version)
    subject = f"{checked} Flux Kustomization{'s' * (checked != 1)} of {service} in " + ", ".join(
        environments
    )
    return subject, findings
