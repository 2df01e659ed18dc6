"""Listing a patch file in an environment overlay's ``kustomization.yaml``.

Proposals that change one environment (right-sizing, a model pin) write a small patch file
into ``services/<service>/deploy/overlays/<env>/`` and list it last in the overlay's
``patches``, so it wins over earlier ones. The overlay's kustomization is edited with a
JSON patch (one added line in the diff), never rewritten.
"""

from __future__ import annotations

from typing import Protocol

from portal.changes.edits import Edit
from portal.changes.yaml_objects import Target
from portal.yaml_source import YamlStream

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class OverlayRefusedError(Exception):
    """The overlay cannot be edited safely; the message says why, for a person."""


class FileReader(Protocol):
    """What building the edits reads of the GitOps repository at one commit."""

    def list_files(self, ref: str, prefix: str = "") -> list[str]:
        """Return the file paths at ``ref`` under ``prefix``."""
        ...

    def read_file(self, ref: str, path: str) -> bytes:
        """Return the bytes of ``path`` at ``ref``."""
        ...


def kustomization_listing(
    repo: FileReader, base: str, overlay: str, files: list[str], patch_file: str
) -> Edit | None:
    """Return the edit listing ``patch_file`` in the overlay's patches, None if it is listed.

    ``files`` are the overlay's files at ``base``. Raises :class:`OverlayRefusedError` when
    the overlay has no kustomization, or one the portal cannot recognise.
    """
    path = next(
        (f"{overlay}/{name}" for name in KUSTOMIZATION_FILES if f"{overlay}/{name}" in files), None
    )
    if path is None:
        raise OverlayRefusedError(f"{overlay} has no kustomization.yaml on main")
    data = next(iter(YamlStream(repo.read_file(base, path).decode("utf-8", "replace"))), None)
    content = data.data if data is not None else None
    if not isinstance(content, dict) or content.get("kind") != "Kustomization":
        raise OverlayRefusedError(
            f"{path} does not say kind: Kustomization, so the portal cannot edit it safely; "
            f"list {patch_file} in its patches by hand"
        )
    patches = content.get("patches")
    if isinstance(patches, list) and any(
        isinstance(item, dict) and item.get("path") == patch_file for item in patches
    ):
        return None
    if patch_file in (content.get("patchesStrategicMerge") or []):
        return None
    operation = (
        {"op": "add", "path": "/patches/-", "value": {"path": patch_file}}
        if isinstance(patches, list)
        else {"op": "add", "path": "/patches", "value": [{"path": patch_file}]}
    )
    return Edit(path, None, "json6902", Target("Kustomization"), [operation])
