"""Whether a scaffolded folder deploys: Kubernetes manifests Flux applies, or files only.

A template says so in its manifest (``deploys: true|false`` in ``template.yaml``); a
template without the field (any template registered from git without a manifest) is
judged by what it rendered: YAML files under ``deploy/``, where the bundled templates keep
their Kustomize base and overlays (``templates/CONTRACT.md``). A deploying service gets one
Flux Kustomization per environment (:mod:`.flux`) and the manifest checks; one that does
not (a library, a repository skeleton) gets neither, only the checks of its files.

The check stage reads the same answer back from the commit it checks, so edits of a
service later are checked the way its scaffold was: the service deploys when its Flux
wiring is there or it has manifests under ``deploy/``. Manifests that are committed are
checked even when the template declared ``deploys: false``: what sits in the GitOps
repository is never left unchecked because of a flag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from portal.integrations.gitops import GitOpsRepo
from portal.scaffold.registry.manifest import TemplateInfo

DEPLOY_FOLDER = "deploy/"
MANIFEST_SUFFIXES = (".yaml", ".yml")


def has_manifests(paths: Iterable[str]) -> bool:
    """Tell whether any of the folder-relative POSIX ``paths`` is YAML under ``deploy/``."""
    return any(
        path.startswith(DEPLOY_FOLDER) and path.lower().endswith(MANIFEST_SUFFIXES)
        for path in paths
    )


def template_deploys(info: TemplateInfo, rendered: Sequence[str]) -> bool:
    """Return whether a render of ``info`` deploys: as declared, else from its files."""
    return info.deploys if info.deploys is not None else has_manifests(rendered)


def commit_deploys(repo: GitOpsRepo, commit: str, service: str) -> bool:
    """Tell whether ``services/<service>`` deploys at ``commit`` (Flux wiring or manifests)."""
    folder = f"services/{service}/"
    listed = repo.list_files(commit, folder + DEPLOY_FOLDER)
    if has_manifests(path.removeprefix(folder) for path in listed):
        return True
    wiring = re.compile(rf"clusters/[^/]+/services/{re.escape(service)}\.ya?ml")
    return any(wiring.fullmatch(path) for path in repo.list_files(commit, "clusters"))
