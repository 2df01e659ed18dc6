"""Service names the portal refuses beyond DNS-1123, and why.

A service's name becomes its namespace, its Flux Kustomization in ``flux-system``, the
folder ``services/<name>`` and the branch ``scaffold/<name>``, so a name the cluster or the
GitOps repository already uses would take over or break what is there. Refused:

- always: Kubernetes system namespaces (``default``, ``kube-*``), the platform's own names
  (``flux-system``, ``monitoring``, ``infrastructure``), git ref names (``head``, ``main``,
  ``master``, ``origin``) and YAML's boolean and null words (an unquoted ``on`` is ``true``);
- from the GitOps repository's main branch: the name, namespace and target namespace of
  every object defined under ``clusters/`` and ``infrastructure/``, the configured main
  branch, and the last part of every branch and tag name (``release/payments`` takes
  ``payments``).

The objects of ``main`` are read once per commit (two git processes) and kept per commit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_tree import read_files, ref_names
from portal.review.collisions import (
    CLUSTER_FOLDERS,
    PLATFORM_NAMES,
    manifest_objects,
    object_key,
    system_namespace_reason,
)

GIT_REF_NAMES = frozenset({"head", "main", "master", "origin"})
# YAML 1.1 (which Kubernetes' Go YAML still reads) turns these into booleans or null.
YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
_CACHED_COMMITS = 8

_lock = threading.Lock()
_taken: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()


def reserved_reason(name: str) -> str | None:
    """Say why ``name`` (any case) is reserved whatever the repository holds, or None."""
    lowered = name.lower()
    if lowered in PLATFORM_NAMES:
        return f"{name} {PLATFORM_NAMES[lowered]}"
    if (reason := system_namespace_reason(lowered)) is not None:
        return f"{name} {reason}"
    if lowered in GIT_REF_NAMES:
        return f"{name} is a git ref name: branches and commands would mistake it for one"
    if lowered in YAML_WORDS:
        return f"{name} reads as a boolean or null in YAML, not as a name"
    return None


def _describe(kind: str, namespace: str, name: str, path: str) -> str:
    return f"{kind} {namespace + '/' if namespace else ''}{name} in {path}"


def names_in(files: Mapping[str, bytes]) -> dict[str, str]:
    """Map each name the objects of ``files`` use to why it is taken (the first file wins)."""
    taken: dict[str, str] = {}
    for path in sorted(files):
        objects, _ = manifest_objects(path, files[path])  # unreadable: the review reports it
        for obj in objects:
            key = object_key(obj)
            if key is None:
                continue
            _, kind, namespace, name = key
            what = _describe(kind, namespace, name, path)
            taken.setdefault(name, f"is already the name of {what}")
            if namespace:
                taken.setdefault(namespace, f"is already the namespace of {what}")
            spec: Any = obj.get("spec")
            target = spec.get("targetNamespace") if isinstance(spec, Mapping) else None
            if isinstance(target, str) and target:
                taken.setdefault(target, f"is already the target namespace of {what}")
    return taken


def taken_names(repo: GitOpsRepo, commit: str) -> dict[str, str]:
    """Return :func:`names_in` of a commit's cluster folders, computed once per commit."""
    key = (str(repo.git_dir), commit)
    with _lock:
        if key in _taken:
            _taken.move_to_end(key)
            return _taken[key]
    taken = names_in(read_files(repo, commit, CLUSTER_FOLDERS).files)
    with _lock:
        _taken[key] = taken
        while len(_taken) > _CACHED_COMMITS:
            _taken.popitem(last=False)
    return taken


def repository_reason(repo: GitOpsRepo, name: str) -> str | None:
    """Say why the GitOps repository's ``main`` (as last fetched) rules ``name`` out, or None."""
    if name == repo.main:
        return f"{name} is the name of the GitOps repository's main branch"
    if (reason := taken_names(repo, repo.resolve(repo.main)).get(name)) is not None:
        return f"{name} {reason}"
    for ref in ref_names(repo):
        if ref.rpartition("/")[2] == name:
            return f"{name} is the name of the git ref {ref} in the GitOps repository"
    return None
