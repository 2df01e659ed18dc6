"""What a template's default render changes between two versions, file by file.

The template is rendered at both versions with the same answers (:func:`default_answers`:
only the questions without a default are answered, so a changed default shows), and the
two folders are compared: files added, removed and modified, with a unified diff of each
text file, capped so a large template cannot flood the page. Copier's answers file is left
out: it always differs in ``_commit``. Refs are checked by
:mod:`portal.integrations.git_args` before anything is rendered.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from portal.integrations.copier import ANSWERS_FILE, Renderer
from portal.integrations.git_args import check_ref
from portal.scaffold.answers import validate_answers
from portal.scaffold.questions import NAME_FIELD, NAME_RE
from portal.scaffold.registry.manifest import TemplateError, TemplateInfo

MAX_DIFF_CHARS = 200_000  # of diff text per render diff, all files together
MAX_DIFF_FILE_BYTES = 256_000  # a bigger file is not diffed: difflib is quadratic at worst
_BINARY_PROBE = 8000  # bytes searched for NUL, as git does
Status = Literal["added", "removed", "modified"]


@dataclasses.dataclass(frozen=True)
class FileDiff:
    """How one file of a default render changed between two versions.

    ``diff`` is a unified diff (empty for a binary file, or once the text cap is reached);
    ``cut`` says the text was shortened or left out to keep within the caps.
    """

    path: str
    status: Status
    binary: bool = False
    diff: str = ""
    cut: bool = False


@dataclasses.dataclass(frozen=True)
class RenderDiff:
    """A render of the template at ``from_ref`` against one at ``to_ref``, same answers."""

    from_ref: str
    to_ref: str
    files: tuple[FileDiff, ...]  # sorted by path; unchanged files are not listed
    answers_file: str  # left out: it differs in ``_commit`` whatever else changed

    @property
    def added(self) -> tuple[str, ...]:
        """Return the paths only the newer render has."""
        return self._paths("added")

    @property
    def removed(self) -> tuple[str, ...]:
        """Return the paths only the older render has."""
        return self._paths("removed")

    @property
    def modified(self) -> tuple[str, ...]:
        """Return the paths both renders have, with other content or mode."""
        return self._paths("modified")

    @property
    def cut(self) -> bool:
        """Tell whether any diff text was shortened or left out."""
        return any(entry.cut for entry in self.files)

    def _paths(self, status: Status) -> tuple[str, ...]:
        return tuple(entry.path for entry in self.files if entry.status == status)


def default_answers(info: TemplateInfo) -> dict[str, Any]:
    """Answer only the questions without a default, with the example their field shows.

    The same answers as ``default_answers`` of ``tests/templates/test_contract.py``, typed
    and checked by :func:`~portal.scaffold.answers.validate_answers`. Every other question
    is left to Copier, so each version renders with its own defaults and a changed default
    shows in a :func:`render_diff`. ``name`` is always answered (the template's name when
    it asks none): the renders are made in a folder of that name. Raises
    :class:`~portal.scaffold.registry.manifest.TemplateError` naming a question whose
    example is no valid answer.
    """
    raw: dict[str, object] = {q.name: q.placeholder for q in info.questions if q.required}
    raw.setdefault(NAME_FIELD, info.name)
    answers, errors = validate_answers(info.questions, raw)
    if errors:
        problems = "; ".join(f"{key}: {message}" for key, message in sorted(errors.items()))
        raise TemplateError(f"template {info.name}: its examples are no valid answers ({problems})")
    return {key: answers[key] for key in raw if key in answers}


def render_diff(
    renderer: Renderer,
    template_src: str,
    answers: Mapping[str, Any],
    from_ref: str,
    to_ref: str,
    workdir: Path,
    *,
    answers_file: str = ANSWERS_FILE,
) -> RenderDiff:
    """Render the template at both refs with ``answers`` and compare the renders by file.

    ``workdir`` is a folder the caller owns (and removes): the renders are written to
    ``from/<name>`` and ``to/<name>`` in it, named after the ``name`` answer as a service's
    folder is (templates default answers to ``_folder_name``), and must not exist yet.
    The answers file is left out. Raises
    :class:`~portal.integrations.copier.RenderError` when a render fails.
    """
    check_ref(from_ref, "from ref")
    check_ref(to_ref, "to ref")
    name = answers.get(NAME_FIELD)
    folder = name if isinstance(name, str) and NAME_RE.fullmatch(name) else "service"
    before = renderer.render(template_src, from_ref, answers, workdir / "from" / folder)
    after = renderer.render(template_src, to_ref, answers, workdir / "to" / folder)
    return compare_folders(before.dest, after.dest, from_ref, to_ref, answers_file=answers_file)


def compare_folders(
    before: Path, after: Path, from_ref: str, to_ref: str, *, answers_file: str = ANSWERS_FILE
) -> RenderDiff:
    """Compare two rendered folders file by file (see :func:`render_diff`)."""
    old, new = _listing(before), _listing(after)
    files: list[FileDiff] = []
    budget = MAX_DIFF_CHARS
    for path in sorted((old.keys() | new.keys()) - {answers_file}):
        entry = _file_diff(path, old.get(path), new.get(path))
        if entry is None:
            continue
        if entry.diff and len(entry.diff) > budget:
            kept = entry.diff[: entry.diff.rfind("\n", 0, budget) + 1]
            entry = dataclasses.replace(entry, diff=kept, cut=True)
        budget -= len(entry.diff)
        files.append(entry)
    return RenderDiff(from_ref, to_ref, tuple(files), answers_file)


def _listing(folder: Path) -> dict[str, Path]:
    """Return the files of a render by relative POSIX path (links resolved inside it)."""
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _mode(path: Path | None) -> str:
    if path is None:
        return ""
    return "100755" if os.stat(path).st_mode & 0o111 else "100644"


def _text(path: Path | None) -> tuple[str | None, bool]:
    """Return ``(text, too_large)``; text is None for a binary file (or no file: ``""``)."""
    if path is None:
        return "", False
    if path.stat().st_size > MAX_DIFF_FILE_BYTES:
        return None, True
    data = path.read_bytes()
    if b"\0" in data[:_BINARY_PROBE]:
        return None, False
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return None, False


def _file_diff(path: str, before: Path | None, after: Path | None) -> FileDiff | None:
    """Return how ``path`` changed, or None when it did not."""
    status: Status = "added" if before is None else "removed" if after is None else "modified"
    old_mode, new_mode = _mode(before), _mode(after)
    same_mode = old_mode == new_mode
    if before is not None and after is not None and same_mode and _same(before, after):
        return None
    (old, old_large), (new, new_large) = _text(before), _text(after)
    if old is None or new is None:
        return FileDiff(
            path, status, binary=not (old_large or new_large), cut=old_large or new_large
        )
    header = []
    if status == "modified" and old_mode != new_mode:
        header = [f"old mode {old_mode}\n", f"new mode {new_mode}\n"]
    lines = difflib.unified_diff(
        _lines(old),
        _lines(new),
        fromfile="/dev/null" if before is None else f"a/{path}",
        tofile="/dev/null" if after is None else f"b/{path}",
    )
    return FileDiff(path, status, diff="".join(header + [_ended(line) for line in lines]))


def _same(before: Path, after: Path) -> bool:
    return (
        before.stat().st_size == after.stat().st_size and before.read_bytes() == after.read_bytes()
    )


def _lines(text: str) -> list[str]:
    # Split on "\n" only (splitlines would also cut at "\r", form feeds and U+2028).
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _ended(line: str) -> str:
    return line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
