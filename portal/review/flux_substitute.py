"""Flux's post-build variable substitution, as far as the review needs it: object names.

A Flux Kustomization's ``postBuild.substitute`` sets ``${VAR}`` (and ``${VAR:=default}``,
``${VAR:-default}``) in what it applies, so one folder applied by two Kustomizations with
different variables makes two sets of objects (the chaos experiments each service applies
with ``SERVICE=<name>``). The collisions check names objects the way Flux applies them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Flux's postBuild variables: ${VAR}, ${VAR:=default} and ${VAR:-default}.
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[=-]([^}]*))?\}")
_SUBSTITUTE = "kustomize.toolkit.fluxcd.io/substitute"


def substitutions(spec: Mapping[str, Any]) -> dict[str, str]:
    """Return a Flux Kustomization's inline ``postBuild.substitute`` variables."""
    post_build = spec.get("postBuild")
    inline = post_build.get("substitute") if isinstance(post_build, Mapping) else None
    if not isinstance(inline, Mapping):
        return {}
    return {str(key): str(value) for key, value in inline.items()}


def _substitute(text: str, variables: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in variables:
            return variables[name]
        # A variable of postBuild.substituteFrom (a cluster's ConfigMap, unknown here) is
        # left as written: objects that differ only by it are not told apart.
        return default if default is not None else match.group(0)

    return VARIABLE.sub(one, text)


def substituted(obj: Mapping[str, Any], variables: Mapping[str, str]) -> Mapping[str, Any]:
    """Return ``obj`` named as Flux applies it: its name and namespace with ``${VAR}`` set.

    The same experiments folder applied for two services (``SERVICE=a``, ``SERVICE=b``)
    makes two objects, not one twice. An object annotated
    ``kustomize.toolkit.fluxcd.io/substitute: disabled`` is applied as written.
    """
    metadata = obj.get("metadata")
    if not variables or not isinstance(metadata, Mapping):
        return obj
    annotations = metadata.get("annotations")
    if isinstance(annotations, Mapping) and annotations.get(_SUBSTITUTE) == "disabled":
        return obj
    named = {
        key: _substitute(value, variables) if isinstance(value, str) else value
        for key, value in metadata.items()
        if key in ("name", "namespace")
    }
    return {**obj, "metadata": {**metadata, **named}}
