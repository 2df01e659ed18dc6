"""Chaos experiments for a scaffolded service: one Flux Kustomization per environment.

The GitOps repository keeps each template's Chaos Mesh experiments, with ``${SERVICE}``
for the service's name, under ``infrastructure/base/chaos-mesh/experiments/<template>/``
(the seed copies ``sre/chaos``). A service of that template runs them in an environment
through ``clusters/<env>/chaos/<service>.yaml``: a Kustomization applying that folder with
the name substituted, once the service is Ready (and so what it waits for: the
infrastructure, with Chaos Mesh and its CRDs). Production environments get none: the
seed installs Chaos Mesh outside production only, and an experiment there is a decision
made in a reviewed change (the ``flux wiring`` check refuses one where no CRDs are
installed).
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from portal.changes.environments import environment_class
from portal.scaffold.flux import API_VERSION, FLUX_NAMESPACE, SOURCE_NAME

EXPERIMENTS = "infrastructure/base/chaos-mesh/experiments"
INTERVAL = "1h"
_HEADER = (
    "# Chaos Mesh experiments of {service} in {env} (the {template} template's set, see\n"
    "# {experiments}/{template}); delete an experiment to run it again, this file to stop.\n"
)


def experiments_folder(template: str) -> str:
    """Return the repository folder of a template's experiments."""
    return f"{EXPERIMENTS}/{template}"


def chaos_kustomizations(
    service: str, template: str, environments: Sequence[str]
) -> dict[str, bytes]:
    """Return ``{"clusters/<env>/chaos/<service>.yaml": YAML bytes}`` outside production.

    The caller adds them only when the repository has the template's experiments folder.
    """
    files: dict[str, bytes] = {}
    for env in dict.fromkeys(environments):
        if environment_class(env) == "production":
            continue
        document = {
            "apiVersion": API_VERSION,
            "kind": "Kustomization",
            "metadata": {
                "name": f"{service}-chaos",
                "namespace": FLUX_NAMESPACE,
                "labels": {"app.kubernetes.io/part-of": service},
            },
            "spec": {
                "interval": INTERVAL,
                "path": f"./{experiments_folder(template)}",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": SOURCE_NAME},
                # The service is Ready only after what it waits for (the infrastructure,
                # with Chaos Mesh's CRDs) is: waiting for it waits for both, in any layout.
                "dependsOn": [{"name": service}],
                "postBuild": {"substitute": {"SERVICE": service}},
            },
        }
        header = _HEADER.format(
            service=service, env=env, template=template, experiments=EXPERIMENTS
        )
        body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
        files[f"clusters/{env}/chaos/{service}.yaml"] = (header + body).encode()
    return files
