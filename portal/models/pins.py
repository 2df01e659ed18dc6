"""Which model version each environment serves: the pin in ``deploy/overlays/<env>/model.yaml``.

The pin is a strategic-merge patch of the service's Deployment setting the ``app``
container's ``MODEL_VERSION`` (a version number of the registered model); a service also
accepts ``MODEL_URI=models:/<name>/<version>``, which wins when both are set. An empty
value (or no pin file) means the service serves the model it trains itself.

:func:`read_pins` reads every environment's pin on one commit; :func:`pin_edits` builds the
edits of a change setting one environment's pin. The portal always writes the whole pin
file (it owns it, its header says so) and lists it in the overlay's patches when needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from portal.changes.edits import Edit
from portal.changes.overlay_patches import FileReader, kustomization_listing
from portal.cost.deployed import overlay_path
from portal.models.owners import MODEL_NAME
from portal.yaml_source import YamlStream

PIN_FILE = "model.yaml"
VERSION_VARIABLE = "MODEL_VERSION"
URI_VARIABLE = "MODEL_URI"
CONTAINER = "app"
MODEL_URI = re.compile(r"^models:/(?P<name>[^/]+)/(?P<version>[0-9]+)$")
VERSION = re.compile(r"^[0-9]{1,9}$")

# Exactly what the templates render (includes/model-pin.yaml.jinja), so a promotion's diff
# is the one line of the value.
_PIN_TEXT = """\
# The model version the {env} environment of {service} serves: a version of
# {model} in the MLflow model registry. Changes are proposed from the
# portal's Models page and reviewed like any other; empty: the service serves the model
# it trains itself.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {service}
spec:
  template:
    spec:
      containers:
        - name: {container}
          env:
            - name: {variable}
              value: {value}
"""
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Pin:
    """One environment's pin: the version (None: unpinned), or why it cannot be read."""

    environment: str
    path: str
    version: str | None = None
    model: str | None = None  # the model a MODEL_URI names (None for MODEL_VERSION)
    problem: str | None = None


def _env_values(data: Any) -> dict[str, str]:
    """Return the ``app`` container's literal env values of one Deployment patch."""
    try:
        containers = data["spec"]["template"]["spec"]["containers"]
    except (KeyError, TypeError):
        return {}
    found: dict[str, str] = {}
    for container in containers if isinstance(containers, list) else []:
        if not isinstance(container, dict) or container.get("name") != CONTAINER:
            continue
        for item in container.get("env") or []:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                value = item.get("value")
                found[item["name"]] = "" if value is None else str(value)
    return found


def read_pin(environment: str, path: str, text: str) -> Pin:
    """Read one pin file's text; a problem names the file and what is wrong."""
    stream = YamlStream(text)
    documents = [document.data for document in stream]
    if stream.problem is not None:
        where = f" line {stream.problem.line}" if stream.problem.line else ""
        return Pin(environment, path, problem=f"{path}{where}: {stream.problem.reason}")
    values: dict[str, str] = {}
    for data in documents:
        if isinstance(data, dict) and data.get("kind") == "Deployment":
            values.update(_env_values(data))
    uri = values.get(URI_VARIABLE, "").strip()
    if uri:
        match = MODEL_URI.fullmatch(uri)
        if match is None:
            return Pin(
                environment,
                path,
                problem=f"{path}: {URI_VARIABLE} {uri!r} is not models:/<name>/<version>",
            )
        return Pin(environment, path, match["version"], match["name"])
    version = values.get(VERSION_VARIABLE, "").strip()
    if not version:
        return Pin(environment, path)
    if VERSION.fullmatch(version) is None:
        return Pin(
            environment, path, problem=f"{path}: {VERSION_VARIABLE} {version!r} is not a number"
        )
    return Pin(environment, path, version)


def read_pins(
    repo: FileReader, commit: str, service: str, environments: Sequence[str]
) -> dict[str, Pin]:
    """Return the pin of each environment of ``service`` that has an overlay at ``commit``."""
    pins: dict[str, Pin] = {}
    files = set(repo.list_files(commit, f"services/{service}/deploy/overlays"))
    for environment in environments:
        path = f"{overlay_path(service, environment)}/{PIN_FILE}"
        if path in files:
            text = repo.read_file(commit, path).decode("utf-8", "replace")
            pins[environment] = read_pin(environment, path, text)
        elif any(name.startswith(overlay_path(service, environment) + "/") for name in files):
            pins[environment] = Pin(environment, path)
    return pins


def pin_text(service: str, environment: str, model: str, version: str) -> str:
    """Return the whole pin file setting ``MODEL_VERSION`` to ``version`` ("" unpins).

    Every value is checked first (they are written into YAML unquoted but for the version).
    """
    if DNS_LABEL.fullmatch(service) is None or DNS_LABEL.fullmatch(environment) is None:
        raise ValueError(f"{service!r} in {environment!r}: not a service and environment name")
    if MODEL_NAME.fullmatch(model) is None:
        raise ValueError(f"{model!r} is not a registered model name")
    if version and VERSION.fullmatch(version) is None:
        raise ValueError(f"version {version!r} is not a number")
    return _PIN_TEXT.format(
        env=environment,
        service=service,
        model=model,
        container=CONTAINER,
        variable=VERSION_VARIABLE,
        value=json.dumps(version),
    )


def pin_edits(
    repo: FileReader, base: str, service: str, environment: str, model: str, version: str
) -> list[Edit]:
    """Return the edits pinning ``environment`` of ``service`` to ``version`` of ``model``.

    Raises :class:`portal.changes.overlay_patches.OverlayRefusedError` when the overlay
    is missing or its kustomization cannot be edited safely.
    """
    overlay = overlay_path(service, environment)
    files = repo.list_files(base, overlay)
    edits = [Edit(f"{overlay}/{PIN_FILE}", content=pin_text(service, environment, model, version))]
    listing = kustomization_listing(repo, base, overlay, files, PIN_FILE)
    return [*edits, *([listing] if listing else [])]
