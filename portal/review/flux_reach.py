"""Which files of ``clusters/`` a Flux instance applies: the ``flux wiring`` check's reach.

A manifest in a cluster folder is applied only when a Flux instance reads it: the
cluster's sync Kustomization (``clusters/<env>/flux-system/``, written by ``flux bootstrap
--path=clusters/<env>``) builds its ``spec.path``, and every Flux Kustomization in what it
applies builds its own path in turn. A file is left out when its cluster was never
bootstrapped (no ``flux-system/``, and no other Kustomization applies the folder), when it
lies outside every such path, when a ``kustomization.yaml`` on the way does not list it
(Flux's kustomize-controller generates a ``kustomization.yaml`` only for a folder without
one), or when ``.sourceignore`` keeps it out of the source artifact.

A ``flux-system/`` folder without a sync Kustomization (the placeholder of Flux's reference
repository, which ``flux bootstrap`` fills in) is read as bootstrapped with the cluster's
own folder as its path, since that is what the bootstrap writes.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from portal.integrations.kubernetes import Finding, Severity
from portal.review.flux_sources import (
    Cluster,
    applied,
    artifact_folders,
    excluded_by,
    files_under,
    ignore_spec,
    kustomization_file,
    repository_folder,
)

REACH_RULE = "flux-cluster-reach"


@dataclass
class Reach:
    """The files of the tree the clusters' Flux instances apply, and how each cluster is read."""

    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)  # every folder built on the way
    paths: dict[str, list[str]] = field(default_factory=dict)  # env: its sync paths
    elsewhere: set[str] = field(default_factory=set)  # envs synced from another source


def flux_reach(files: Mapping[str, bytes], clusters: Iterable[Cluster]) -> Reach:
    """Follow every cluster's sync Kustomization, and the Kustomizations it applies, in turn."""
    clusters = list(clusters)
    spec, _lines = ignore_spec(files)
    reach = Reach()
    # Every Kustomization of the cluster folders by file, with the folder it builds.
    builds: dict[str, list[str]] = {}
    for cluster in clusters:
        artifacts = artifact_folders(cluster)
        for kustomization in cluster.kustomizations():
            folder = repository_folder(kustomization, artifacts)
            if folder is not None:
                builds.setdefault(kustomization.file, []).append(folder)
    pending: list[str] = []
    for cluster in clusters:
        # `flux bootstrap` applies the build of flux-system/ itself: its Kustomizations sync.
        bootstrap = set(applied(files, f"{cluster.root}/flux-system").files)
        sync = [k for k in cluster.kustomizations() if k.file in bootstrap]
        roots = [folder for file in sorted(bootstrap) for folder in builds.get(file, [])]
        if sync and not roots:
            reach.elsewhere.add(cluster.env)
        elif files_under(files, f"{cluster.root}/flux-system") and not any(
            k.file.startswith(f"{cluster.root}/flux-system/") for k in cluster.kustomizations()
        ):
            roots = [cluster.root]  # the bootstrap placeholder: flux bootstrap --path=<root>
        reach.paths[cluster.env] = roots
        pending += roots
    while pending:
        folder = pending.pop()
        if folder in reach.folders:
            continue
        found = applied(files, folder)
        reach.folders |= found.folders
        for path in found.files:
            if path in reach.files or spec.match_file(path):
                continue  # read already, or not in the source artifact
            reach.files.add(path)
            pending += builds.get(path, [])
    return reach


def unreached(
    files: Mapping[str, bytes], reach: Reach, cluster: Cluster, paths: Iterable[str]
) -> list[Finding]:
    """Report each of ``paths`` (manifests of ``cluster``'s folder) no Flux instance applies."""
    findings = []
    for path in sorted(set(paths) - reach.files):
        severity, reason = _why(files, reach, cluster, path)
        message = f"{path}: no Flux instance applies this file: {reason}"
        findings.append(
            Finding(
                severity=severity,
                rule=REACH_RULE,
                object=path,
                source=path,
                path="",
                message=message,
            )
        )
    return findings


def _why(
    files: Mapping[str, bytes], reach: Reach, cluster: Cluster, path: str
) -> tuple[Severity, str]:
    spec, lines = ignore_spec(files)
    excluded = excluded_by(spec, lines, [path])
    if excluded is not None:
        pattern, line = excluded
        where = f"line {line} " if line else ""
        return Severity.ERROR, (
            f"it is excluded from the source artifact by .sourceignore {where}({pattern!r})"
        )
    roots = reach.paths.get(cluster.env, [])
    if cluster.env in reach.elsewhere:
        return Severity.WARNING, (
            f"the sync Kustomization of {cluster.root}/flux-system/ reads another source than "
            "this repository's GitRepository flux-system: the portal cannot prove it applies "
            "the file"
        )
    if not roots and files_under(files, f"{cluster.root}/flux-system"):
        return Severity.ERROR, (
            f"the build of {cluster.root}/flux-system/ (what flux bootstrap applies) has no "
            "Kustomization from this repository's GitRepository flux-system to sync the cluster"
        )
    if not roots:
        return Severity.ERROR, (
            f"{cluster.root}/ has no flux-system/ folder, so no Flux instance was bootstrapped "
            f"to read it (flux bootstrap --path={cluster.root} writes one), and no "
            "Kustomization of another cluster applies it"
        )
    built = _deepest_built(reach, path)
    if built is None:
        return Severity.ERROR, (
            f"it is outside the spec.path of every Kustomization that reads the {cluster.env} "
            f"cluster (its sync applies {', '.join(f'./{root}' for root in roots)})"
        )
    config = kustomization_file(files, built) or f"{built}/kustomization.yaml"
    return Severity.ERROR, (
        f"{config} does not list it (nor a folder holding it) in its resources, and Flux's "
        "kustomize-controller generates a kustomization.yaml only for a folder without one"
    )


def _deepest_built(reach: Reach, path: str) -> str | None:
    """Return the deepest folder holding ``path`` that a Kustomization's build reached."""
    folder = posixpath.dirname(path)
    while folder:
        if folder in reach.folders:
            return folder
        folder = posixpath.dirname(folder)
    return None
