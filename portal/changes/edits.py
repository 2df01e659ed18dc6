"""Edits to an existing service, applied to the files of one ``main`` commit.

An edit replaces (or creates) a whole file, or patches one object of a YAML file
(:mod:`portal.changes.patches`, :mod:`portal.changes.yaml_objects`). Only the service's own
files may be edited: anything under ``services/<service>/`` and its Flux Kustomizations
``clusters/<env>/services/<service>.yaml``. Paths that leave the repository (``..``,
absolute), go through ``.git``, or meet a symbolic link, a submodule or a folder on
``main`` are refused with the path named. Every problem is reported per field
(``edits[2].path``, ``edits[0].patch.target``), all at once, and nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, Protocol

from portal.changes.patches import PatchError, apply_json6902, apply_strategic_merge
from portal.changes.yaml_objects import Target, TargetError, patch_object
from portal.integrations.gitops_plumbing import PathRefusedError, checked_path, parent_dirs
from portal.yaml_source import YamlStream

PatchType = Literal["strategic-merge", "json6902"]
_FOLDER, _LINK, _SUBMODULE = "040000", "120000", "160000"
_YAML = (".yaml", ".yml")
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_CLUSTER_FILE = re.compile(rf"^clusters/(?P<env>{_LABEL})/services/(?P<file>[^/]+)$")


class TreeReader(Protocol):
    """What edits read of the GitOps repository at one commit (``GitOpsClone`` has it)."""

    def read_file(self, ref: str, path: str) -> bytes:
        """Return the bytes of ``path`` at ``ref``."""
        ...

    def entry_modes(self, ref: str, paths: Sequence[str]) -> dict[str, str]:
        """Return the git mode of each path that exists at ``ref``."""
        ...


@dataclass(frozen=True)
class Edit:
    """One edit: ``content`` (the whole file), or a ``patch`` of ``patch_type`` to ``target``."""

    path: str
    content: str | None = None
    patch_type: PatchType | None = None
    target: Target | None = None
    patch: Any = None

    def describe(self) -> str:
        """Say what the edit does, for the commit message."""
        if self.content is not None:
            return f"{self.path}: whole file"
        return f"{self.path}: {self.patch_type} patch of {self.target}"


@dataclass
class EditError(Exception):
    """Edits that were refused: one message per field; nothing was written."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{name}: {message}" for name, message in self.errors.items())


@dataclass(frozen=True)
class EditedFiles:
    """The files an edit change writes (only those that differ from ``main``)."""

    files: dict[str, bytes]
    executable: list[str]


def path_problem(service: str, path: str) -> str | None:
    """Say why ``path`` may not be edited for ``service`` (by its text alone), or None."""
    try:
        checked_path(path)
    except PathRefusedError as exc:
        return str(exc)
    if path.startswith(f"services/{service}/"):
        return None
    cluster = _CLUSTER_FILE.match(path)
    if cluster is not None and cluster["file"] == f"{service}.yaml":
        return None
    return (
        f"{path} is outside services/{service}/ and clusters/<env>/services/{service}.yaml: "
        "an edit changes only its service's own files"
    )


def _tree_problems(service: str, paths: dict[int, str], modes: dict[str, str]) -> dict[str, str]:
    """Refuse paths that meet a link, submodule, folder or file in the way on ``main``."""
    errors: dict[str, str] = {}
    if modes.get(f"services/{service}") != _FOLDER:
        errors["service"] = f"services/{service} is not a folder on main: no such service"
    for index, path in paths.items():
        where = f"edits[{index}].path"
        cluster = _CLUSTER_FILE.match(path)
        if cluster is not None and modes.get(f"clusters/{cluster['env']}") != _FOLDER:
            errors[where] = f"{path}: main has no cluster folder clusters/{cluster['env']}"
            continue
        for part in [*parent_dirs(path), path]:
            mode = modes.get(part)
            if mode == _LINK:
                errors[where] = f"{path}: {part} is a symbolic link on main; links are not followed"
            elif mode == _SUBMODULE:
                errors[where] = f"{path}: {part} is a submodule on main"
            elif mode == _FOLDER and part == path:
                errors[where] = f"{path} is a folder on main, not a file"
            elif mode is not None and mode != _FOLDER and part != path:
                errors[where] = f"{path}: {part} is a file on main, not a folder"
            if where in errors:
                break
    return errors


def _yaml_problem(text: str) -> str | None:
    stream = YamlStream(text)
    for _document in stream:
        pass
    if stream.problem is None:
        return None
    where = f" at line {stream.problem.line}" if stream.problem.line else ""
    return f"not valid YAML{where}: {stream.problem.reason}"


def _patcher(edit: Edit) -> Any:
    if edit.patch_type == "json6902":
        return partial(apply_json6902, operations=edit.patch)
    return partial(apply_strategic_merge, patch=edit.patch)


def apply_edits(repo: TreeReader, base: str, service: str, edits: Sequence[Edit]) -> EditedFiles:
    """Apply ``edits`` in order to the files of commit ``base``; return the files to write.

    Several edits of one file apply one after the other. Raises :class:`EditError` with
    every problem found (paths first: no file is read for an edit whose path is refused).
    """
    errors: dict[str, str] = {}
    paths: dict[int, str] = {}
    for index, edit in enumerate(edits):
        if (problem := path_problem(service, edit.path)) is not None:
            errors[f"edits[{index}].path"] = problem
        else:
            paths[index] = edit.path
    for index, path in paths.items():
        if clash := [parent for parent in parent_dirs(path) if parent in paths.values()]:
            errors[f"edits[{index}].path"] = f"{path}: {clash[0]} is edited as a file"
    wanted = {f"services/{service}"} | {
        part for path in paths.values() for part in [*parent_dirs(path), path]
    }
    modes = repo.entry_modes(base, sorted(wanted))
    errors.update(_tree_problems(service, paths, modes))
    if errors:
        raise EditError(errors)
    texts: dict[str, str] = {}
    originals: dict[str, bytes | None] = {}
    for index, edit in enumerate(edits):
        if edit.path not in originals:
            exists = modes.get(edit.path) is not None
            originals[edit.path] = repo.read_file(base, edit.path) if exists else None
        if (refused := _apply_one(index, edit, texts, originals[edit.path])) is not None:
            errors.update(refused)
    if errors:
        raise EditError(errors)
    files = {
        path: text.encode() for path, text in texts.items() if text.encode() != originals[path]
    }
    if not files:
        raise EditError({"edits": "the edits change nothing: every file stays as it is on main"})
    executable = sorted(path for path in files if modes.get(path) == "100755")
    return EditedFiles(files, executable)


def _apply_one(
    index: int, edit: Edit, texts: dict[str, str], original: bytes | None
) -> dict[str, str] | None:
    """Apply one edit to ``texts`` (the files edited so far); return its field errors."""
    if edit.content is not None:
        if "\0" in edit.content:
            return {f"edits[{index}].content": "a text file may not contain NUL characters"}
        try:
            edit.content.encode("utf-8")
        except UnicodeEncodeError:
            return {f"edits[{index}].content": "must be valid Unicode text (a lone surrogate)"}
        if edit.path.endswith(_YAML) and (problem := _yaml_problem(edit.content)):
            return {f"edits[{index}].content": problem}
        texts[edit.path] = edit.content
        return None
    if not edit.path.endswith(_YAML):
        return {f"edits[{index}].path": f"{edit.path}: a patch edits a YAML file (.yaml, .yml)"}
    if edit.path not in texts:
        if original is None:
            return {
                f"edits[{index}].path": f"{edit.path} does not exist on main; send its whole "
                "content to create it"
            }
        try:
            texts[edit.path] = original.decode("utf-8")
        except UnicodeDecodeError:
            return {f"edits[{index}].path": f"{edit.path} is not UTF-8 text on main"}
    assert edit.target is not None
    try:
        texts[edit.path] = patch_object(texts[edit.path], edit.target, _patcher(edit))
    except TargetError as exc:
        return {f"edits[{index}].patch.target": f"{edit.path}: {exc}"}
    except PatchError as exc:
        return {f"edits[{index}].patch.patch": f"{edit.path}, {edit.target}: {exc}"}
    return None
