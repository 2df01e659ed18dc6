"""The environments a service can deploy to: the GitOps repository's clusters, read, not assumed.

Each folder ``clusters/<env>/`` of the GitOps repository is one cluster Flux reconciles
(``flux bootstrap --path=clusters/<env>``), and its name is the environment: our seed has
``dev``, ``staging`` and ``prod``, Flux's reference repository ``staging`` and
``production``. ``PORTAL_ENVIRONMENTS``, when set, chooses among them and sets their order;
a name it gives without a cluster folder is left out (nothing could deploy there).

Left to themselves, environments are ordered the way a change is promoted: development
ones first, production ones last (:func:`environment_class`), so a form lists
``dev, staging, prod`` and not the alphabet's ``dev, prod, staging``. The templates apply
the same classes to their replicas (``templates/CONTRACT.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

CLUSTERS = "clusters"
# The Copier variable a render gets them in (data, not an answer: never recorded).
TEMPLATE_VARIABLE = "portal_environments"
EnvironmentClass = Literal["development", "staging", "production"]
_PRODUCTION = re.compile(r"^(prod|production)(-[a-z0-9-]*)?$")
_DEVELOPMENT = re.compile(r"^(dev|development|local)(-[a-z0-9-]*)?$")
_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_RANK = {"development": 0, "staging": 1, "production": 2}


class FileLister(Protocol):
    """What reading the clusters needs of the GitOps repository (``GitOpsClone`` has it)."""

    def list_files(self, ref: str, prefix: str = "") -> list[str]:
        """Return the file paths at ``ref`` under ``prefix``."""
        ...


def environment_class(name: str) -> EnvironmentClass:
    """Say which class an environment is: production, development, or staging (the rest).

    Production: ``prod``, ``production`` and names starting ``prod-``/``production-``;
    development: ``dev``, ``development``, ``local`` and names starting with one of them and
    ``-``; every other name (``staging``, ``qa``, ``preview``...) is staging-like.
    """
    if _PRODUCTION.match(name):
        return "production"
    if _DEVELOPMENT.match(name):
        return "development"
    return "staging"


def promotion_order(names: Iterable[str]) -> list[str]:
    """Order environments development first, production last, by name within a class."""
    return sorted(set(names), key=lambda name: (_RANK[environment_class(name)], name))


def cluster_folders(paths: Iterable[str]) -> list[str]:
    """Return the environment names of the ``clusters/<env>/`` folders among ``paths``.

    Only folders named as a DNS-1123 label count: Flux Kustomization names and Kubernetes
    labels are made from them. Files directly in ``clusters/`` are not clusters.
    """
    found = {
        parts[1]
        for parts in (path.split("/") for path in paths)
        if len(parts) > 2 and parts[0] == CLUSTERS and _LABEL.match(parts[1])
    }
    return promotion_order(found)


def deployable_environments(repo: FileLister, ref: str, configured: Sequence[str]) -> list[str]:
    """Return the environments a service can deploy to at ``ref`` of the GitOps repository.

    The repository's cluster folders, in promotion order; with ``configured``
    (``PORTAL_ENVIRONMENTS``) those of them it names, in its order.
    """
    present = cluster_folders(repo.list_files(ref, f"{CLUSTERS}/"))
    if configured:
        return [env for env in dict.fromkeys(configured) if env in present]
    return present
