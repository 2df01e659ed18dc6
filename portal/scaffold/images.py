"""Flux image automation for a scaffolded service: what its overlays' ``$imagepolicy`` markers name.

The templates' overlays set the image tag with a Flux setter marker::

    images:
      - name: registry.example.com/services/shop
        newTag: "0.1.0" # {"$imagepolicy": "flux-system:shop-prod:tag"}

A marker does nothing until the cluster has the ImagePolicy it names, an ImageRepository
that policy reads, and an ImageUpdateAutomation that writes the tags it selects (the seed's
``clusters/<env>/image-automation.yaml``). The scaffold adds the first two for each
environment, beside the service's Flux Kustomization, from the markers the render wrote
(so any template using Flux's markers gets them, and one without gets none):

- production environments take the newest release of the current major version (a
  semver range from the tag the overlay has now);
- staging-like environments take the newest release, pre-releases included;
- development environments take the newest build: tags ``main-<sha>-<unix time>``, the
  newest time wins (what a CI pipeline on ``main`` pushes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from portal.changes.environments import environment_class

API_VERSION = "image.toolkit.fluxcd.io/v1"
INTERVAL = "5m"
BUILD_TAGS = r"^main-[a-fA-F0-9]+-(?P<ts>[0-9]+)$"
_MARKER = re.compile(
    r'#\s*\{\s*"\$imagepolicy"\s*:\s*"(?P<namespace>[a-z0-9-]+):(?P<policy>[a-z0-9-]+)'
    r'(?::(?P<field>tag|name|digest))?"\s*\}'
)
_ENTRY = re.compile(r"^(?P<indent>\s*)-\s+name:\s*(?P<image>\S+)\s*(#.*)?$")
_FIELD = re.compile(r"^\s*(?P<key>newName|newTag):\s*(?P<value>[^#\s]+)")
_SEMVER = re.compile(r"^v?(?P<major>0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


@dataclass(frozen=True)
class Marker:
    """One ``$imagepolicy`` marker of an overlay: the image it sets and the policy it names."""

    image: str
    tag: str
    namespace: str
    policy: str


def overlay_markers(text: str) -> list[Marker]:
    """Return the markers of a kustomization's ``images:`` entries, with each entry's image.

    An entry's image is its ``newName`` when it has one, else its ``name``.
    """
    markers: list[Marker] = []
    image = tag = ""
    for line in text.splitlines():
        if entry := _ENTRY.match(line):
            image, tag = entry["image"].strip("\"'"), ""
        elif field := _FIELD.match(line):
            value = field["value"].strip("\"'")
            if field["key"] == "newName":
                image = value
            else:
                tag = value
        if image and (found := _MARKER.search(line)):
            markers.append(Marker(image, tag, found["namespace"], found["policy"]))
    return markers


def _policy(env: str, tag: str) -> dict[str, Any]:
    kind = environment_class(env)
    if kind == "development":
        return {
            "filterTags": {"pattern": BUILD_TAGS, "extract": "$ts"},
            "policy": {"numerical": {"order": "asc"}},
        }
    semver = _SEMVER.match(tag)
    floor = tag.removeprefix("v") if semver else "0.0.0"
    if kind == "production":
        ceiling = f"{int(semver['major']) + 1}.0.0" if semver else "1.0.0"
        return {"policy": {"semver": {"range": f">={floor} <{ceiling}"}}}
    return {"policy": {"semver": {"range": f">={floor}-0"}}}


def image_objects(service: str, env: str, markers: Sequence[Marker]) -> list[dict[str, Any]]:
    """Return the ImageRepository and ImagePolicy objects the markers of ``env`` need."""
    objects: list[dict[str, Any]] = []
    repositories: dict[str, str] = {}
    for marker in markers:
        if marker.image not in repositories:
            name = service if not repositories else f"{service}-{len(repositories) + 1}"
            repositories[marker.image] = name
            objects.append(
                {
                    "apiVersion": API_VERSION,
                    "kind": "ImageRepository",
                    "metadata": {"name": name, "namespace": marker.namespace},
                    "spec": {"image": marker.image, "interval": INTERVAL},
                }
            )
        objects.append(
            {
                "apiVersion": API_VERSION,
                "kind": "ImagePolicy",
                "metadata": {"name": marker.policy, "namespace": marker.namespace},
                "spec": {
                    "imageRepositoryRef": {"name": repositories[marker.image]},
                    **_policy(env, marker.tag),
                },
            }
        )
    return objects


def image_documents(service: str, env: str, overlay: str) -> bytes:
    """Return the YAML documents to append to the service's Flux Kustomization file of ``env``.

    ``overlay`` is the text of the rendered ``deploy/overlays/<env>/kustomization.yaml``;
    empty bytes when it has no marker.
    """
    objects = image_objects(service, env, overlay_markers(overlay))
    return b"".join(
        b"---\n" + yaml.safe_dump(obj, sort_keys=False, default_flow_style=False).encode()
        for obj in objects
    )


def with_image_automation(
    service: str, wiring: Mapping[str, bytes], rendered: Mapping[str, bytes]
) -> dict[str, bytes]:
    """Return ``wiring`` (``clusters/<env>/services/<service>.yaml``) with each env's images.

    ``rendered`` are the service's files by repository path; an environment whose overlay
    has no ``$imagepolicy`` marker keeps its file as it is.
    """
    result: dict[str, bytes] = {}
    for path, content in wiring.items():
        env = path.split("/")[1]
        overlay = rendered.get(f"services/{service}/deploy/overlays/{env}/kustomization.yaml")
        text = overlay.decode("utf-8", errors="replace") if overlay else ""
        result[path] = content + image_documents(service, env, text)
    return result
