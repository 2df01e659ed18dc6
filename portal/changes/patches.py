"""Patches to one Kubernetes object: JSON 6902 (``jsonpatch``) and a strategic-merge subset.

Both work in place on the object as :mod:`portal.changes.yaml_objects` loads it (ruamel's
round-trip mappings and lists), so comments and layout of what a patch leaves alone stay.

**Strategic merge**, the subset the portal implements (Kubernetes' full rules depend on
each field's schema, which a kustomize overlay file does not carry):

- mappings merge key by key, recursively; a key set to ``null`` is deleted;
- lists whose items are all mappings with a ``name`` (containers, env, volumes,
  ports with names, kustomize ``images``) merge by ``name``: an item with a new name is
  appended, one with a known name is merged into it; every other list is replaced;
- directives: ``$patch: delete`` on a list item (by ``name``) or on a mapping deletes it,
  ``$patch: replace`` on a mapping or a list item replaces it instead of merging, and an
  item ``{$patch: replace}`` in a list replaces the whole list with the other items.
  Other directives (``$retainKeys``, ``$setElementOrder``, ``$deleteFromPrimitiveList``)
  are refused, as is a patch changing the object's kind, name or namespace.
"""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSequence
from typing import Any, cast

import jsonpatch
import jsonpointer

DIRECTIVE = "$patch"
_DIRECTIVES = {"delete", "replace", "merge"}
_DELETE = object()  # what merging a `$patch: delete` mapping yields: remove it


class PatchError(ValueError):
    """A patch that cannot be applied; the message names where (a JSON path or pointer)."""


def apply_json6902(obj: Any, operations: Any) -> Any:
    """Apply the RFC 6902 ``operations`` to ``obj`` in place and return the result."""
    if not isinstance(operations, list) or not operations:
        raise PatchError("a json6902 patch is a non-empty list of operations")
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"operation {index} needs an op and a path")
    try:
        patch = jsonpatch.JsonPatch(operations)
        return patch.apply(obj, in_place=True)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise PatchError(f"a test operation failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise PatchError(str(exc)) from None
    except (KeyError, IndexError, TypeError) as exc:  # a path through a scalar
        raise PatchError(f"the patch does not fit the object: {exc}") from None


def apply_strategic_merge(obj: Any, patch: Any) -> Any:
    """Merge the strategic-merge ``patch`` (the subset above) into ``obj`` in place."""
    if not isinstance(obj, MutableMapping):
        raise PatchError("the object is not a mapping")
    if not isinstance(patch, dict) or not patch:
        raise PatchError("a strategic-merge patch is a non-empty mapping")
    if DIRECTIVE in patch:
        raise PatchError(
            f"{DIRECTIVE} at the top of the object is not supported: a patch edits one "
            "object; delete or replace a file with a whole-file edit"
        )
    result = _merge_mapping(obj, patch, "")
    return obj if result is _DELETE else result


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _directive(patch: dict[str, Any], where: str) -> str | None:
    for key in patch:
        if isinstance(key, str) and key.startswith("$") and key != DIRECTIVE:
            raise PatchError(f"{_where(where, key)}: the directive {key} is not supported")
    value = patch.get(DIRECTIVE)
    if value is not None and value not in _DIRECTIVES:
        raise PatchError(f"{_where(where, DIRECTIVE)}: {value!r} is not delete, replace or merge")
    return cast(str | None, value)


def _plain(patch: Any, where: str) -> Any:
    """Return a patch value as it is stored: directives checked and stripped."""
    if isinstance(patch, dict):
        if _directive(patch, where) == "delete":
            raise PatchError(f"{where}: $patch: delete of something the object does not have")
        return {
            key: _plain(value, _where(where, key))
            for key, value in patch.items()
            if key != DIRECTIVE and value is not None
        }
    if isinstance(patch, list):
        return [_plain(item, f"{where}[{index}]") for index, item in enumerate(patch)]
    return patch


def _merge_mapping(target: MutableMapping[Any, Any], patch: dict[str, Any], where: str) -> Any:
    directive = _directive(patch, where)
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _plain({k: v for k, v in patch.items() if k != DIRECTIVE}, where)
    for key, value in patch.items():
        if key == DIRECTIVE:
            continue
        here = _where(where, key)
        current = target.get(key)
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, MutableMapping):
            merged = _merge_mapping(current, value, here)
            if merged is _DELETE:
                del target[key]
            elif merged is not current:
                target[key] = merged
        elif isinstance(value, dict) and value.get(DIRECTIVE) == "delete":
            _directive(value, here)
            target.pop(key, None)
        elif isinstance(value, list) and isinstance(current, MutableSequence):
            _merge_list(current, value, here)
        else:
            target[key] = _plain(value, here)
    return target


def _named(items: Any) -> bool:
    return all(
        isinstance(item, MutableMapping) and isinstance(item.get("name"), str) for item in items
    )


def _merge_list(target: MutableSequence[Any], patch: list[Any], where: str) -> None:
    """Merge ``patch`` into the list ``target`` in place (by name, or replacing it)."""
    replace_all = [item for item in patch if isinstance(item, dict) and set(item) == {DIRECTIVE}]
    if replace_all:
        if any(item[DIRECTIVE] != "replace" for item in replace_all):
            raise PatchError(f"{where}: a list item of only {DIRECTIVE} must say replace")
        target[:] = [_plain(item, where) for item in patch if item not in replace_all]
        return
    if not (patch and _named(patch) and _named(target)):
        target[:] = _plain(patch, where)
        return
    for item in patch:
        name = item["name"]
        here = f"{where}[name={name}]"
        position = next((i for i, old in enumerate(target) if old.get("name") == name), None)
        directive = _directive(item, here)
        if directive == "delete":
            if position is not None:
                del target[position]
        elif position is None:
            target.append(_plain({k: v for k, v in item.items() if k != DIRECTIVE}, here))
        elif directive == "replace":
            target[position] = _plain({k: v for k, v in item.items() if k != DIRECTIVE}, here)
        else:
            _merge_mapping(target[position], item, here)
