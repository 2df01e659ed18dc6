"""Would Flux install a HelmRelease a change adds to a cluster? What the cluster applies.

A HelmRelease that every schema accepts can still never install: a ``dependsOn`` naming a
HelmRelease the cluster does not have (helm-controller waits on it for ever), or a chart
whose source (``spec.chart.spec.sourceRef``: a HelmRepository, GitRepository or Bucket;
``spec.chartRef``: an OCIRepository or HelmChart) the cluster does not define (the chart
is never fetched). Both are looked up in what the cluster applies: its root folder and the
manifests under its Flux Kustomizations' paths, read from the tree. When part of that
cannot be read offline (another source, a file too large), a missing target may be there,
and the finding is a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from portal.integrations.kubernetes import Finding, Severity
from portal.review.collisions import manifest_objects
from portal.review.flux_sources import (
    Cluster,
    ClusterObject,
    applied_files,
    artifact_folders,
    files_under,
    repository_folder,
)

DEPENDS_RULE = "flux-depends-on"
HELM_SOURCE_RULE = "flux-helm-source"
HELM_GROUP = "helm.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
_CHART_SOURCES = ("HelmRepository", "GitRepository", "Bucket")  # spec.chart.spec.sourceRef
_CHART_REFS = ("OCIRepository", "HelmChart")  # spec.chartRef

Tree = tuple[Mapping[str, bytes], Sequence[str]]  # the files read, and those too large to read


@dataclass(frozen=True)
class ClusterApplies:
    """Every object a cluster applies that the tree holds, and what could not be read."""

    objects: list[Mapping[str, Any]]
    unread: list[str]


def cluster_applies(
    cluster: Cluster, kustomizations: Sequence[ClusterObject], tree: Tree
) -> ClusterApplies:
    """Read the cluster's root folder and what ``kustomizations`` apply from the tree.

    An object applied through a Kustomization with ``spec.targetNamespace`` gets that
    namespace, as Flux sets it.
    """
    files, too_large = tree
    objects: list[Mapping[str, Any]] = [obj.data for obj in cluster.objects]
    unread = [
        f"{path} (larger than the portal reads)" for path in files_under(too_large, cluster.root)
    ]
    artifacts = artifact_folders(cluster)
    for kustomization in kustomizations:
        folder = repository_folder(kustomization, artifacts)
        source = _mapping(kustomization.spec.get("sourceRef"))
        if folder is None:
            unread.append(f"Kustomization {kustomization.name} ({source.get('kind')} source)")
            continue
        if folder == "clusters" or folder.startswith("clusters/"):
            continue  # the root folder, read already
        read, too_large_here = applied_files(files, folder, frozenset(too_large))
        unread += [f"{path} (larger than the portal reads)" for path in too_large_here]
        target = kustomization.spec.get("targetNamespace")
        for path in read:
            for obj in manifest_objects(path, files[path])[0]:
                if isinstance(target, str) and target:
                    metadata = {**_mapping(obj.get("metadata")), "namespace": target}
                    obj = {**obj, "metadata": metadata}
                objects.append(obj)
    return ClusterApplies(objects, unread)


def helm_release_findings(
    release: ClusterObject, cluster: Cluster, applies: ClusterApplies
) -> list[Finding]:
    """Prove a HelmRelease's ``dependsOn`` targets and its chart's source are in the cluster."""
    namespace = _mapping(release.data.get("metadata")).get("namespace")
    own = str(namespace) if namespace else None
    ref = f"HelmRelease/{own or '?'}/{release.name}"
    findings = []

    def missing(rule: str, field: str, keys: tuple[str | int, ...], message: str) -> None:
        severity = Severity.WARNING if applies.unread else Severity.ERROR
        if applies.unread:  # the target may be in what could not be read
            message += f" (unless it is in what could not be read: {', '.join(applies.unread)})"
        findings.append(
            Finding(
                severity=severity,
                rule=rule,
                object=ref,
                source=release.file,
                path=field,
                message=f"{release.where(*keys)}: {message}",
            )
        )

    for index, name, named in release.depends_on():
        target = named or own
        if not _defined(applies, HELM_GROUP, ("HelmRelease",), name, target):
            missing(
                DEPENDS_RULE,
                f"spec.dependsOn[{index}].name",
                ("spec", "dependsOn", index),
                f"dependsOn {name!r}, but nothing the {cluster.env} cluster applies defines "
                f"HelmRelease {target or '?'}/{name}; helm-controller waits on it for ever",
            )
    chart_ref = _mapping(release.spec.get("chartRef"))
    source = chart_ref or _mapping(
        _mapping(_mapping(release.spec.get("chart")).get("spec")).get("sourceRef")
    )
    keys: tuple[str | int, ...] = (
        ("spec", "chartRef") if chart_ref else ("spec", "chart", "spec", "sourceRef")
    )
    field = "spec.chartRef" if chart_ref else "spec.chart.spec.sourceRef"
    kinds = _CHART_REFS if chart_ref else _CHART_SOURCES
    kind, name = str(source.get("kind") or ""), str(source.get("name") or "")
    target = source.get("namespace") or own
    if not source:
        missing(
            HELM_SOURCE_RULE,
            field,
            ("spec",),
            "names no chart source (spec.chart.spec.sourceRef or spec.chartRef): "
            "helm-controller has nothing to install",
        )
    elif kind not in kinds or not _defined(applies, SOURCE_GROUP, (kind,), name, target):
        missing(
            HELM_SOURCE_RULE,
            field,
            keys,
            f"the chart's source {kind} {target or '?'}/{name} is not defined by anything the "
            f"{cluster.env} cluster applies (a {' or '.join(kinds)}): the chart is never fetched",
        )
    return findings


def _defined(
    applies: ClusterApplies, group: str, kinds: Sequence[str], name: str, namespace: object
) -> bool:
    """Tell whether the cluster applies an object of ``kinds`` named so (any namespace: None)."""
    for obj in applies.objects:
        api_version = str(obj.get("apiVersion") or "")
        if api_version.rpartition("/")[0] != group or obj.get("kind") not in kinds:
            continue
        metadata = _mapping(obj.get("metadata"))
        theirs = metadata.get("namespace")
        if metadata.get("name") == name and (not namespace or not theirs or theirs == namespace):
            return True
    return False


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
