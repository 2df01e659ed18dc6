"""The portal's Kubernetes settings: which clusters it reads Flux sync state from.

A part of :class:`portal.config.Settings` (``PORTAL_`` prefix), kept apart because the
cluster settings check each other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode


class KubernetesSettings(BaseSettings):
    """Where the portal reads each environment's Flux Kustomizations (entity, change pages)."""

    kubeconfig: Path | None = Field(
        default=None,
        description="kubeconfig the portal reads Flux sync state with (entity and change "
        "pages); unset: PORTAL_KUBERNETES=in-cluster, else Kubernetes is not configured.",
    )
    kubernetes: Literal["none", "in-cluster"] = Field(
        default="none",
        description="in-cluster: read Flux sync state with the pod's service account "
        "(never guessed from KUBERNETES_SERVICE_HOST); not together with PORTAL_KUBECONFIG.",
    )
    kube_contexts: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Each environment's cluster: dev=ctx-a,prod=ctx-b (kubeconfig contexts; a "
        "bare dev: the default cluster); unlisted ones have none. Unset: every environment "
        "reads the default cluster (current context, or in-cluster).",
    )
    kubernetes_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=60,
        allow_inf_nan=False,
        description="How long a page waits for a cluster's answer (all read at once).",
    )

    @field_validator("kube_contexts", mode="before")
    @classmethod
    def _environment_contexts(cls, value: object) -> object:
        """Read ``dev=ctx-a,prod=ctx-b`` (a bare ``dev``: the default cluster)."""
        return parse_kube_contexts(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kubernetes_source(self) -> Self:
        """Refuse two sources of cluster credentials, and contexts without a kubeconfig."""
        if self.kubeconfig is not None and self.kubernetes == "in-cluster":
            raise ValueError("set PORTAL_KUBECONFIG or PORTAL_KUBERNETES=in-cluster, not both")
        if self.kubeconfig is None and any(self.kube_contexts.values()):
            raise ValueError("PORTAL_KUBE_CONTEXTS names contexts: they need PORTAL_KUBECONFIG")
        return self


def parse_kube_contexts(text: str) -> dict[str, str]:
    """Return ``{environment: context}`` from ``dev=ctx-a,prod=ctx-b`` (``dev``: ``""``)."""
    contexts: dict[str, str] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        environment, _, context = (item.strip() for item in entry.partition("="))
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", environment):
            raise ValueError(f"PORTAL_KUBE_CONTEXTS: {environment!r} is not an environment name")
        if not context.isprintable() or environment in contexts:
            raise ValueError(f"PORTAL_KUBE_CONTEXTS: bad or repeated entry {entry!r}")
        contexts[environment] = context
    return contexts
