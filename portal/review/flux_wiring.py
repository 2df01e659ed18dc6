"""Would Flux reconcile the change? The ``flux wiring`` review check.

A scaffold can write Flux Kustomizations that every other check passes and Flux never
applies: a ``dependsOn`` naming a Kustomization the cluster does not have (Flux waits on
it for ever), a ``spec.path`` outside the source artifact (missing from the tree, or
excluded by the repository's ``.sourceignore``: Flux answers "path not found"), or an
object of a custom resource kind no CRD in the cluster defines (the apply fails "no
matches for kind"). For each cluster ``clusters/<env>/`` of the change's tree this check
proves, for the service's Kustomizations (its ``clusters/<env>/services/<name>.yaml`` and
any Kustomization whose path is in ``services/<name>/``) and, given the base tree, for
every other Kustomization the change adds or edits in the cluster's folder:

1. every ``dependsOn`` target is a Kustomization of that cluster (same namespace unless
   the entry names one);
2. every ``spec.path`` exists in the tree and is not excluded by ``.sourceignore``, for the
   repository's own GitRepository or an ExternalArtifact an ArtifactGenerator copies from
   it; a path in another source cannot be proven offline, which is a warning;
3. every kind of the service's build for that environment (of what another Kustomization
   applies; of any other object the change adds to the cluster's folder, a HelmRelease
   say) is built into Kubernetes, is a Flux kind (the cluster was bootstrapped: it has
   ``flux-system/``), or is defined by what the cluster applies: a
   CustomResourceDefinition in its root folder or under the path of one of its
   Kustomizations, or a HelmRelease of a chart known to install it.

A HelmRelease the change adds or edits in a cluster's folder needs its ``dependsOn``
targets and its chart's source in what the cluster applies (:mod:`portal.review.flux_helm`).
And every cluster file the change adds or edits (the service's own, without a base) must
be applied by a Flux instance at all (:mod:`portal.review.flux_reach`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.integrations.kubernetes import Finding, Severity, object_source
from portal.integrations.kubernetes_schemas import served_kinds
from portal.review.collisions import cluster_environments, manifest_objects, object_key
from portal.review.flux_helm import (
    DEPENDS_RULE,
    HELM_GROUP,
    ClusterApplies,
    cluster_applies,
    helm_release_findings,
)
from portal.review.flux_reach import flux_reach, unreached
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

__all__ = [
    "CRD_CHARTS",
    "DEPENDS_RULE",  # defined beside the HelmRelease proofs, which report it too
    "FLUX_GROUP_SUFFIX",
    "KIND_RULE",
    "PATH_RULE",
    "builtin_kinds",
    "find_flux_wiring",
]

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
    # The CloudNativePG operator; ships Cluster, Backup, Pooler... (the portal's PostgreSQL).
    "cloudnative-pg": "postgresql.cnpg.io",
    # Chaos Mesh; ships PodChaos, NetworkChaos, StressChaos... (dev and staging only).
    "chaos-mesh": "chaos-mesh.org",
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
    for index, name, named in kustomization.depends_on():
        namespace = named or kustomization.namespace
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
    kustomization: ClusterObject,
    cluster: Cluster,
    files: Mapping[str, bytes],
    service: str,
    service_dir: Path,
) -> list[Finding]:
    raw = kustomization.spec.get("path")
    where = kustomization.where("spec", "path")
    source = _mapping(kustomization.spec.get("sourceRef"))
    kind, name = source.get("kind", "GitRepository"), source.get("name")

    def found(severity: Severity, message: str) -> list[Finding]:
        ref = _ref(kustomization)
        return [_finding(severity, PATH_RULE, ref, kustomization.file, "spec.path", message)]

    if normalised(raw) is None:
        return found(Severity.ERROR, f"{where}: spec.path {raw!r} leaves the repository")
    # An ExternalArtifact an ArtifactGenerator copies from this repository maps to its folder.
    path = repository_folder(kustomization, artifact_folders(cluster))
    if path is None:
        return found(
            Severity.WARNING,
            f"{where}: spec.path {raw!r} is read from {kind} {name}, not from this "
            f"repository's GitRepository flux-system: the portal cannot prove it is in that "
            "source artifact",
        )
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
    named = (
        "" if kind == "GitRepository" else f" (./{path} of the repository, through {kind} {name})"
    )
    if not inside:
        return found(
            Severity.ERROR,
            f"{where}: spec.path {raw!r}{named} is not a folder of the repository: Flux "
            "answers that the path was not found",
        )
    spec, lines = ignore_spec(files)
    excluded = excluded_by(spec, lines, sorted(set(inside)))
    if excluded is None:
        return []
    pattern, line = excluded
    return found(
        Severity.ERROR,
        f"{where}: spec.path {raw!r}{named} is excluded from the source artifact by "
        f".sourceignore {f'line {line} ' if line else ''}({pattern!r}): Flux never sees the folder",
    )


def _installed(
    applies: ClusterApplies,
) -> tuple[set[tuple[str, str]], set[str], list[str]]:
    """Return the CRD (group, kind)s, the API groups of known charts, and what was not read."""
    objects = applies.objects
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
    return crds, charts, applies.unread


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


@dataclass
class _Kinds:
    """The kind proof for one cluster, reading what the cluster installs once, when needed."""

    cluster: Cluster
    others: Sequence[ClusterObject]  # the Kustomizations whose paths may install CRDs
    tree: _Tree
    k8s_version: str
    _applies: ClusterApplies | None = None
    _installed: tuple[set[tuple[str, str]], set[str], list[str]] | None = None

    @property
    def applies(self) -> ClusterApplies:
        """What the cluster applies, read from the tree once."""
        if self._applies is None:
            self._applies = cluster_applies(self.cluster, self.others, self.tree)
        return self._applies

    def check(self, objects: Sequence[tuple[Mapping[str, Any], str]], origin: str) -> list[Finding]:
        """Report each custom kind of ``objects`` (with their files) nothing installs."""
        cluster, k8s_version = self.cluster, self.k8s_version
        builtin = builtin_kinds(k8s_version)
        bootstrapped = bool(files_under(self.tree[0], f"{cluster.root}/flux-system"))
        findings = []
        reported: set[tuple[str, str]] = set()
        for obj, source in objects:
            api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
            group = api_version.rpartition("/")[0]
            if (group, kind) in builtin or (group, kind) in reported:
                continue
            if bootstrapped and group.endswith(FLUX_GROUP_SUFFIX):
                continue
            self._installed = self._installed or _installed(self.applies)
            crds, chart_groups, unread = self._installed
            if (group, kind) in crds or group in chart_groups:
                continue
            reported.add((group, kind))
            message = (
                f"{kind} ({api_version}) {origin} is not built into Kubernetes {k8s_version}"
                f"{'' if group.endswith(FLUX_GROUP_SUFFIX) else ' nor a Flux kind'}, and "
                f"nothing the {cluster.env} cluster applies installs it: no "
                "CustomResourceDefinition in its folder or under its Kustomizations' paths, and "
                f"no HelmRelease of {' or '.join(sorted(CRD_CHARTS))}. Flux's apply fails with "
                '"no matches for kind"'
            )
            severity = Severity.ERROR
            if unread:  # what those apply cannot be read offline: the CRD may be there
                severity = Severity.WARNING
                message += f" (unless it is in what could not be read: {', '.join(unread)})"
            ref = f"{kind}/{_mapping(obj.get('metadata')).get('name', '?')}"
            findings.append(_finding(severity, KIND_RULE, ref, source, "kind", message))
        return findings


def _applied_objects(
    kustomization: ClusterObject, cluster: Cluster, files: Mapping[str, bytes]
) -> list[tuple[Mapping[str, Any], str]]:
    """Read the objects a Kustomization applies from the tree (none from another source)."""
    folder = repository_folder(kustomization, artifact_folders(cluster))
    if folder is None:
        return []  # the path check says the source cannot be read
    return [
        (obj, path)
        for path in applied_files(files, folder)[0]
        for obj in manifest_objects(path, files[path])[0]
    ]


def _changed(cluster: Cluster, base: Cluster) -> list[ClusterObject]:
    """Return the objects of ``cluster`` the change adds or edits, by identity and content."""
    before = {object_key(obj.data): obj.data for obj in base.objects}
    return [obj for obj in cluster.objects if before.get(object_key(obj.data)) != obj.data]


def find_flux_wiring(
    files: Mapping[str, bytes],
    service: str,
    service_dir: Path,
    built: Mapping[str, Sequence[Mapping[str, Any]]],
    k8s_version: str,
    *,
    too_large: Sequence[str] = (),
    base_files: Mapping[str, bytes] | None = None,
) -> tuple[str, list[Finding]]:
    """Check the Flux wiring of a change in every cluster of ``files``; return subject, findings.

    ``files`` is the change's tree (at least ``clusters/``, ``infrastructure/`` and the root
    ``.sourceignore``; see :func:`portal.review.flux_sources.flux_tree`), ``service_dir``
    the exported service folder, ``built`` the service's objects per environment that built,
    ``too_large`` the files of the tree left unread (a CRD there makes a missing kind a warning).
    Given ``base_files`` (the same reading of the change's base), every Kustomization and
    object the change adds or edits under ``clusters/`` is proven too, and every file it adds
    or edits there must be applied by a Flux instance (:mod:`portal.review.flux_reach`);
    without it, only the service's own Kustomizations and files are.
    Raises ``ValueError`` when the tree has no ``clusters/<env>/`` folder.
    """
    environments = cluster_environments(files)
    if not environments:
        raise ValueError("the change's tree has no clusters/<env>/ folder to check against")
    clusters = [read_cluster(env, files) for env in environments]
    reach = flux_reach(files, clusters)
    findings: list[Finding] = []
    checked = edited = 0
    for cluster in clusters:
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
        changed = []  # without a base, nothing to compare with: the service's own wiring only
        if base_files is not None:
            base = read_cluster(cluster.env, base_files)
            changed = [obj for obj in _changed(cluster, base) if obj not in own]
        kustomizations = [obj for obj in changed if obj in others]
        for kustomization in own + kustomizations:
            findings += _depends_on(kustomization, cluster)
            findings += _source_path(kustomization, cluster, files, service, service_dir)
        checked += len(own)
        edited += len(kustomizations)
        kinds = _Kinds(cluster, others, (files, too_large), k8s_version)
        if own and cluster.env in built:
            objects = [(obj, f"{prefix}/{object_source(obj)}") for obj in built[cluster.env]]
            findings += kinds.check(objects, f"of the {cluster.env} overlay")
        for kustomization in kustomizations:
            origin = f"applied by {_ref(kustomization)} ({kustomization.file})"
            findings += kinds.check(_applied_objects(kustomization, cluster, files), origin)
        loose = [obj for obj in changed if obj not in others]
        findings += kinds.check(
            [(o.data, o.file) for o in loose], f"in the {cluster.env} cluster's folder"
        )
        for release in (obj for obj in loose if obj.is_a(HELM_GROUP, "HelmRelease")):
            findings += helm_release_findings(release, cluster, kinds.applies)
        # By file, not by object: a file moved unchanged may land where nothing applies it.
        touched = {obj.file for obj in own}
        if base_files is not None:
            touched |= {
                obj.file for obj in cluster.objects if files[obj.file] != base_files.get(obj.file)
            }
        findings += unreached(files, reach, cluster, touched)
    subject = f"{checked} Flux Kustomization{'s' * (checked != 1)} of {service}"
    if edited:
        subject += f" and {edited} more the change adds or edits"
    return subject + " in " + ", ".join(environments), findings
