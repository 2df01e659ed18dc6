"""What a new service's Flux Kustomization must wait for, read from each cluster's folder.

Our seed's clusters apply one ``infrastructure`` Kustomization; Flux's reference
repository chains ``infra-controllers`` -> ``infra-configs`` and makes its ``apps`` wait
for ``infra-configs``. A service's Kustomization that names a target the cluster lacks
waits for ever, so the targets are read from ``clusters/<env>/`` at the change's base:

1. what the cluster's existing apps wait for: the ``dependsOn`` of every Kustomization
   that applies ``apps/...`` or ``services/...`` (or is named ``apps``);
2. with no apps yet, the end of the infrastructure chain: every other Kustomization that
   none of the others waits for;
3. nothing, in a cluster with no Kustomization besides its own sync.

The cluster's own sync (the Kustomization applying ``clusters/<env>``) and the service's
own earlier wiring (a revision) are never targets.

The service's overlays must also be in the source artifact. Flux's reference repository
keeps only ``apps/``, ``clusters/`` and ``infrastructure/`` (``.sourceignore``: ``/*`` then
``!/apps/``...), so a scaffold there also amends ``.sourceignore`` to let ``services/`` in
(:func:`services_in_artifact`): one visible line in the change's diff, not a silent failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pathspec

from portal.review.collisions import FLUX_NAMESPACE
from portal.review.flux_sources import (
    Cluster,
    ClusterObject,
    artifact_folders,
    read_cluster,
    repository_folder,
)

SOURCEIGNORE_LINES = (
    "# Added by the developer portal: Flux applies the services it creates from services/.",
    "!/services/",
)
APP_FOLDERS = ("apps", "services")
APPS_NAME = "apps"  # the reference layout's Kustomization of every app


def _targets(kustomization: ClusterObject) -> list[str]:
    return [
        name
        for _, name, named in kustomization.depends_on()
        if name and (named or kustomization.namespace) == FLUX_NAMESPACE
    ]


def _candidates(cluster: Cluster, service: str) -> list[tuple[ClusterObject, str | None]]:
    """Return the cluster's Kustomizations in Flux's namespace, less its sync and the service's."""
    artifacts = artifact_folders(cluster)
    found: list[tuple[ClusterObject, str | None]] = []
    for kustomization in cluster.kustomizations():
        if kustomization.namespace != FLUX_NAMESPACE or not kustomization.name:
            continue
        folder = repository_folder(kustomization, artifacts)
        if folder is not None and (folder == cluster.root or folder.startswith(f"{cluster.root}/")):
            continue  # the cluster's own sync
        if kustomization.name == service or (folder or "").startswith(f"services/{service}/"):
            continue  # this service's wiring from an earlier revision
        found.append((kustomization, folder))
    return found


def depends_on(cluster: Cluster, service: str) -> list[str]:
    """Return the Kustomizations ``service``'s Kustomization in ``cluster`` must wait for."""
    candidates = _candidates(cluster, service)
    names = {kustomization.name for kustomization, _ in candidates}
    apps = [
        kustomization
        for kustomization, folder in candidates
        if kustomization.name == APPS_NAME or (folder or "").split("/")[0] in APP_FOLDERS
    ]
    if apps:
        waited = [name for app in apps for name in _targets(app) if name in names]
        return list(dict.fromkeys(waited))
    waited_for = {name for kustomization, _ in candidates for name in _targets(kustomization)}
    return sorted(names - waited_for)


def cluster_dependencies(
    files: Mapping[str, bytes], service: str, environments: Sequence[str]
) -> dict[str, list[str]]:
    """Return ``{env: dependsOn targets}``, read from each ``clusters/<env>/`` in ``files``."""
    return {env: depends_on(read_cluster(env, files), service) for env in environments}


def services_in_artifact(service: str, sourceignore: bytes) -> bytes | None:
    """Return ``.sourceignore`` amended so Flux's artifact has ``services/``; None: it has.

    Also None when appending :data:`SOURCEIGNORE_LINES` would not let the service in: the
    ``flux wiring`` check then names the pattern that keeps it out.
    """
    probe = f"services/{service}/deploy/kustomization.yaml"
    text = sourceignore.decode("utf-8", errors="replace")
    if not pathspec.GitIgnoreSpec.from_lines(text.splitlines()).match_file(probe):
        return None
    amended = text.rstrip("\n") + "\n\n" + "\n".join(SOURCEIGNORE_LINES) + "\n"
    if pathspec.GitIgnoreSpec.from_lines(amended.splitlines()).match_file(probe):
        return None
    return amended.encode()
