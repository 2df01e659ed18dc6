"""The Flux wiring the portal adds beside a scaffolded service, one file per environment.

Each ``clusters/<env>/services/<service>.yaml`` is a ``kustomize.toolkit.fluxcd.io/v1``
Kustomization that applies ``./services/<service>/deploy/overlays/<env>`` from the
cluster's ``flux-system`` GitRepository, after what the cluster's apps wait for (read by
:mod:`portal.scaffold.layout`: ``infrastructure`` in our seed, which installs the CRDs the
service uses, such as ServiceMonitor), with ``prune`` and ``wait``.

No ``targetNamespace`` by default: the service's own ``deploy/base`` declares its
namespace (and the Namespace object), so ``kubectl kustomize`` output, the review checks
and Flux all see the same namespaces. Pass ``target_namespace`` for templates that leave
the namespace to the deployer; Flux then sets it on every namespaced object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

API_VERSION = "kustomize.toolkit.fluxcd.io/v1"
FLUX_NAMESPACE = "flux-system"
SOURCE_NAME = "flux-system"
INFRASTRUCTURE = "infrastructure"
INTERVAL = "10m"
RETRY_INTERVAL = "2m"
TIMEOUT = "5m"
_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_HEADER = (
    "# Added by the developer portal when {service} was created: Flux applies the {env}\n"
    "# overlay of the service. Generated; change it through a review like everything else.\n"
)


def service_kustomization(
    service: str,
    env: str,
    *,
    depends_on: Sequence[str] = (INFRASTRUCTURE,),
    target_namespace: str | None = None,
) -> dict[str, Any]:
    """Return the Flux Kustomization object applying ``service``'s overlay for ``env``."""
    for what, value in (("service", service), ("environment", env)):
        if not _LABEL_RE.match(value):
            raise ValueError(f"{what} {value!r} must be a DNS-1123 label")
    spec: dict[str, Any] = {
        "interval": INTERVAL,
        "retryInterval": RETRY_INTERVAL,
        "timeout": TIMEOUT,
        "path": f"./services/{service}/deploy/overlays/{env}",
        "prune": True,
        "wait": True,
        "sourceRef": {"kind": "GitRepository", "name": SOURCE_NAME},
    }
    if depends_on:
        spec["dependsOn"] = [{"name": name} for name in depends_on]
    if target_namespace is not None:
        spec["targetNamespace"] = target_namespace
    return {
        "apiVersion": API_VERSION,
        "kind": "Kustomization",
        "metadata": {
            "name": service,
            "namespace": FLUX_NAMESPACE,
            "labels": {"app.kubernetes.io/name": service, "app.kubernetes.io/part-of": service},
        },
        "spec": spec,
    }


def flux_kustomizations(
    service: str,
    environments: Sequence[str],
    *,
    depends_on: Sequence[str] | Mapping[str, Sequence[str]] = (INFRASTRUCTURE,),
    target_namespace: str | None = None,
) -> dict[str, bytes]:
    """Return ``{"clusters/<env>/services/<service>.yaml": YAML bytes}`` for each environment.

    ``depends_on``: the same targets everywhere, or each environment's own (as
    :mod:`portal.scaffold.layout` reads them from the cluster; a missing one waits for none).
    """
    if not environments:
        raise ValueError("at least one environment is needed")
    files = {}
    for env in dict.fromkeys(environments):
        targets = depends_on.get(env, ()) if isinstance(depends_on, Mapping) else depends_on
        document = service_kustomization(
            service, env, depends_on=targets, target_namespace=target_namespace
        )
        body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
        files[f"clusters/{env}/services/{service}.yaml"] = (
            _HEADER.format(service=service, env=env) + body
        ).encode()
    return files
