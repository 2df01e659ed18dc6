"""Recording a template's canonical source in a rendered service's Copier answers file.

The portal renders from a local git repository (a bundled template's published repository,
a registered template's mirror): fast and offline. Copier records that local path as
``_src_path``, which exists on no other machine, so ``copier update`` from any clone of the
GitOps repository could not find the template. :func:`record_source` replaces it with the
template's canonical URL (and, where the recorded ``_commit`` names a ref only the local
repository has, with a commit the URL serves).

The answers file is changed as data: the values are loaded, changed and dumped the way
Copier's ``to_nice_yaml`` dumps them, in place of the old entry, so comments, key order and
every other answer stay as Copier wrote them; the result is loaded again and must equal
the old answers with only those keys changed. A file of another shape is dumped whole
(its leading comments kept).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

SOURCE_KEY = "_src_path"
COMMIT_KEY = "_commit"


class AnswersFileError(ValueError):
    """The answers file cannot be read as Copier's answers (a mapping in YAML)."""


@dataclasses.dataclass(frozen=True)
class RecordedSource:
    """What a service's answers file says about its template, for ``copier update``."""

    url: str  # where anyone may fetch the template: recorded as `_src_path`
    commit: str | None = None  # replaces Copier's `_commit` (None: keep Copier's, a tag)

    def values(self) -> dict[str, str]:
        """Return the answers to record."""
        recorded = {SOURCE_KEY: self.url}
        if self.commit is not None:
            recorded[COMMIT_KEY] = self.commit
        return recorded


def _nice_yaml(data: dict[str, Any], *, sort_keys: bool = True) -> str:
    # As Copier's `to_nice_yaml` filter dumps: same quoting, indentation and folding.
    return yaml.dump(
        data,
        Dumper=yaml.SafeDumper,
        indent=4,
        allow_unicode=True,
        default_flow_style=False,
        sort_keys=sort_keys,
    )


def _loads_as(text: str, expected: dict[str, Any]) -> bool:
    try:
        return bool(yaml.safe_load(text) == expected)
    except yaml.YAMLError:
        return False


def _load(text: str, path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnswersFileError(f"{path.name}: not YAML ({exc})") from None
    if not isinstance(data, dict):
        raise AnswersFileError(f"{path.name}: not a mapping of answers")
    return data


def _entry(lines: list[str], key: str) -> tuple[int, int] | None:
    """Return the line span of the top-level entry ``key`` (its continuation lines too)."""
    starts = [index for index, line in enumerate(lines) if line.startswith(f"{key}:")]
    if len(starts) != 1:
        return None
    start = end = starts[0]
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if line and not line[0].isspace():
            break
        if line.strip():
            end = index  # blank lines after the entry are not its own
    return start, end + 1


def _replaced(text: str, values: dict[str, str]) -> str | None:
    """Return ``text`` with each entry of ``values`` dumped in place; None when one is missing."""
    lines = text.split("\n")
    for key, value in values.items():
        span = _entry(lines, key)
        if span is None:
            return None
        dumped = _nice_yaml({key: value}).rstrip("\n").split("\n")
        lines[span[0] : span[1]] = dumped
    return "\n".join(lines)


def _dumped_whole(text: str, data: dict[str, Any]) -> str:
    header = []
    for line in text.split("\n"):
        if not line.startswith("#"):
            break
        header.append(line + "\n")
    return "".join(header) + _nice_yaml(data, sort_keys=False)


def record_source(path: Path, source: RecordedSource) -> bool:
    """Record ``source`` in the answers file ``path``; return False when it was already there.

    Raises :class:`AnswersFileError` when the file does not hold Copier's answers.
    """
    text = path.read_text(encoding="utf-8")
    before = _load(text, path)
    values = source.values()
    if all(before.get(key) == value for key, value in values.items()):
        return False
    expected = {**before, **values}
    new = _replaced(text, values)
    if new is None or not _loads_as(new, expected):  # e.g. an entry inside a flow mapping
        new = _dumped_whole(text, expected)
    if not _loads_as(new, expected):  # the dump of loaded YAML always loads back the same
        raise AnswersFileError(f"{path.name}: the answers cannot be written back unchanged")
    path.write_text(new, encoding="utf-8")
    return True
