"""Editing one object of a YAML file while keeping the rest of the file as it was written.

The file is read with the portal's bounded safe reader (:mod:`portal.yaml_source`) to find
the object and where its document starts and ends; only that document's text is loaded
with ruamel's round-trip loader, patched and written back, in the layout (indentation of
mappings and lists) that reproduces the original document. Other documents, comments and
untouched lines stay byte for byte, so a reviewer sees, and a merge compares, only the
lines the patch changed.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from portal.changes.patches import PatchError
from portal.yaml_source import YamlDocument, YamlStream

# (mapping indent, sequence indent, dash offset): Kubernetes' usual one first.
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0))


@dataclass(frozen=True)
class Target:
    """The object a patch edits: its kind and ``metadata.name`` (and namespace, if given).

    Without a name, the kind alone must single out one object (a ``kustomization.yaml``
    has no ``metadata``).
    """

    kind: str
    name: str | None = None
    namespace: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}" if self.name else self.kind


class TargetError(ValueError):
    """The file does not hold exactly one object matching the target; the message says why."""


def _identity(data: Any) -> tuple[Any, Any, Any]:
    metadata = data.get("metadata") if isinstance(data, Mapping) else None
    metadata = metadata if isinstance(metadata, Mapping) else {}
    kind = data.get("kind") if isinstance(data, Mapping) else None
    return kind, metadata.get("name"), metadata.get("namespace")


def _matches(data: Any, target: Target) -> bool:
    kind, name, namespace = _identity(data)
    if kind != target.kind or (target.name is not None and name != target.name):
        return False
    return target.namespace is None or namespace == target.namespace


def _find(text: str, target: Target) -> YamlDocument:
    stream = YamlStream(text)
    documents = [document for document in stream if isinstance(document.data, Mapping)]
    if stream.problem is not None:
        where = f" (line {stream.problem.line})" if stream.problem.line else ""
        raise TargetError(f"the file is not valid YAML{where}: {stream.problem.reason}")
    found = [document for document in documents if _matches(document.data, target)]
    if len(found) == 1:
        return found[0]
    if found:
        lines = ", ".join(str(document.line) for document in found)
        raise TargetError(f"{len(found)} objects match {target} (lines {lines}); name one")
    present = ", ".join(
        "/".join(str(part) for part in _identity(document.data)[:2] if part) or "?"
        for document in documents
    )
    raise TargetError(f"no {target} in the file (it holds: {present or 'no objects'})")


def _yaml(layout: tuple[int, int, int]) -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = 1_000_000  # never fold a long line the file had on one line
    mapping, sequence, offset = layout
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _dump(yaml: YAML, data: Any) -> str:
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _round_trip(region: str) -> tuple[YAML, Any]:
    """Load ``region`` in the first layout that writes it back unchanged (else the usual one)."""
    fallback: tuple[YAML, Any] | None = None
    for layout in _LAYOUTS:
        yaml = _yaml(layout)
        data = yaml.load(region)
        if _dump(yaml, data) == region:
            return yaml, data
        fallback = fallback or (yaml, data)
    assert fallback is not None
    return fallback


def patch_object(text: str, target: Target, apply: Callable[[Any], Any]) -> str:
    """Return ``text`` with the one object matching ``target`` replaced by ``apply(object)``.

    Raises :class:`TargetError` when the file does not hold exactly one such object, and
    :class:`PatchError` when the patch fails or would change the object's identity.
    """
    document = _find(text, target)
    start, end = document.node.start_mark.index, document.node.end_mark.index
    region = text[start:end]
    try:
        yaml, data = _round_trip(region)
    except YAMLError as exc:  # read fine as a whole file, but not as a document of its own
        raise TargetError(f"the document at line {document.line} cannot be edited: {exc}") from None
    before = _identity(data)
    if before != _identity(document.data):
        raise TargetError(f"the document at line {document.line} cannot be edited on its own")
    patched = apply(data)
    if not isinstance(patched, Mapping):
        raise PatchError("the patched object is no longer a mapping")
    if _identity(patched) != before:
        raise PatchError("a patch may not change the object's kind, name or namespace")
    written = _dump(yaml, patched)
    if region.endswith("\n") and not written.endswith("\n"):
        written += "\n"
    return text[:start] + written + text[end:]
