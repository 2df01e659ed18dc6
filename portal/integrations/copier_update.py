"""Copier: updating one generated service to a later version of its template.

:func:`update_service` takes a service folder as it is on ``main`` (paths and bytes), writes
it into a scratch git repository with one clean commit (Copier needs a clean tree: with
uncommitted changes it silently skips deleting files the template removed) and runs
``copier update`` there in one of the worker processes of :mod:`portal.integrations.copier`
(``unsafe=False``, no user settings, new questions take their defaults, conflicts inline).
Copier's three-way merge renders the old version from the answers file's ``_src_path`` and
``_commit``; the recorded ``_src_path`` is the template's canonical URL, which the worker
may not reach, so the scratch copy's answers point at the local ``template_src`` and the
canonical source is recorded back afterwards.

:func:`conflicts_in` finds what the merge could not resolve: Copier's inline markers
(``<<<<<<< before updating`` ... ``>>>>>>> after updating``) and ``*.rej`` files. A lone
``=======`` line (a Markdown underline) is not a conflict.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Collection, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from portal.integrations.copier import (
    ANSWERS_FILE,
    DEFAULT_TIMEOUT,
    RenderError,
    RenderTimeoutError,
    run_in_worker,
)
from portal.integrations.copier_answers import (
    COMMIT_KEY,
    SOURCE_KEY,
    AnswersFileError,
    RecordedSource,
    record_source,
)
from portal.integrations.git import GitError, run_git
from portal.integrations.git_args import (
    GitArgumentError,
    check_ref,
    check_repo_path,
    check_url,
)

CONFLICT_START = "<<<<<<< before updating"
CONFLICT_END = ">>>>>>> after updating"
REJECT_SUFFIX = ".rej"
UNSAFE_SETTINGS = {
    "_tasks": "tasks",
    "_migrations": "migrations",
    "_jinja_extensions": "Jinja extensions",
}
_COPIER_FILES = ("copier.yml", "copier.yaml")
_SCRATCH_GIT = (
    *("-c", "user.name=portal", "-c", "user.email=portal@localhost"),
    *("-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false"),
)


class UpdateError(RenderError):
    """The service could not be updated; the message names the answers file or the ref."""


class UpdateTimeoutError(UpdateError, RenderTimeoutError):
    """The update did not finish in time (its worker was stopped)."""


@dataclasses.dataclass(frozen=True)
class Conflict:
    """A file the update could not merge: inline markers, or a ``.rej`` file of rejected hunks."""

    path: str  # the file with markers, or the `.rej` file itself
    kind: Literal["markers", "rej"]
    hunks: tuple[str, ...]  # markers: the lines from <<<<<<< to >>>>>>>; rej: the file's text
    lines: tuple[int, ...] = ()  # markers: the 1-based line where each hunk starts


@dataclasses.dataclass(frozen=True)
class UpdateResult:
    """What ``copier update`` made of one service folder."""

    files: dict[str, bytes]  # the whole new folder, the answers file included
    deleted: tuple[str, ...]  # input paths that are gone
    changed: tuple[str, ...]  # paths added or modified (content or executable bit)
    executable: tuple[str, ...]
    conflicts: tuple[Conflict, ...]
    from_commit: str | None  # `_commit` of the answers file before and after
    to_commit: str | None
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0


def _marker_hunks(data: bytes) -> list[tuple[int, str]]:
    """Return ``(line, text)`` for each marker hunk; a marker without its pair counts too."""
    lines = data.splitlines(keepends=True)
    hunks: list[tuple[int, str]] = []
    start: int | None = None
    for index, line in enumerate(lines):
        text = line.rstrip().decode("utf-8", errors="replace")
        if text == CONFLICT_START:
            if start is not None:  # the previous hunk lost its end marker
                hunks.append((start + 1, b"".join(lines[start:index]).decode(errors="replace")))
            start = index
        elif text == CONFLICT_END:
            first = index if start is None else start
            hunks.append((first + 1, b"".join(lines[first : index + 1]).decode(errors="replace")))
            start = None
    if start is not None:
        hunks.append((start + 1, b"".join(lines[start:]).decode(errors="replace")))
    return hunks


def conflicts_in(files: Mapping[str, bytes]) -> tuple[Conflict, ...]:
    """Return the update conflicts left in ``files`` (relative paths to bytes), by path.

    Counts Copier's inline markers (``<<<<<<< before updating`` and ``>>>>>>> after
    updating``, each also alone, as a person's half-finished resolution leaves them) and
    every ``*.rej`` file. Binary files (a NUL byte) are not searched for markers.
    """
    found = []
    for path in sorted(files):
        data = files[path]
        if path.endswith(REJECT_SUFFIX):
            found.append(Conflict(path, "rej", (data.decode("utf-8", errors="replace"),)))
        elif b"\0" not in data and (b"<<<<<<< " in data or b">>>>>>> " in data):
            hunks = _marker_hunks(data)
            if hunks:
                lines, texts = zip(*hunks, strict=True)
                found.append(Conflict(path, "markers", tuple(texts), tuple(lines)))
    return tuple(found)


def _load_answers(data: bytes, answers_file: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UpdateError(f"{answers_file}: not readable as YAML ({exc})") from None
    if not isinstance(loaded, dict):
        raise UpdateError(f"{answers_file}: not a mapping of Copier's answers")
    return loaded


def _recorded(files: Mapping[str, bytes], answers_file: str) -> tuple[str, str]:
    """Return the ``(_src_path, _commit)`` the service's answers file records."""
    if answers_file not in files:
        raise UpdateError(
            f"{answers_file}: missing, so the service records no template version to update from"
        )
    answers = _load_answers(files[answers_file], answers_file)
    for key in (SOURCE_KEY, COMMIT_KEY):
        if not isinstance(answers.get(key), str) or not answers[key]:
            raise UpdateError(f"{answers_file}: records no {key}, so it cannot be updated")
    try:
        check_ref(answers[COMMIT_KEY], f"{answers_file} {COMMIT_KEY}")
    except GitArgumentError as exc:
        raise UpdateError(str(exc)) from None
    return answers[SOURCE_KEY], answers[COMMIT_KEY]


def _template_name(src_path: str) -> str:
    name = PurePosixPath(src_path.rstrip("/")).name
    return name.removesuffix(".git") or src_path


def _resolve(template_src: str, ref: str) -> str | None:
    """Return the commit ``ref`` names in the template's repository, or None."""
    try:
        found = run_git("-C", template_src, "rev-parse", "--verify", "--quiet",
                        "--end-of-options", f"{ref}^{{commit}}")  # fmt: skip
    except GitError:
        return None
    return found.strip() or None


def _unsafe_settings(template_src: str, commit: str) -> list[str]:
    """Return the unsafe settings (``_tasks`` ...) the Copier configuration at ``commit`` has.

    A configuration plain YAML cannot read (Copier's ``!include``) is left to Copier, which
    refuses the same settings itself with ``unsafe=False``.
    """
    listed = run_git("-C", template_src, "ls-tree", "--name-only", commit).splitlines()
    found: list[str] = []
    for name in (name for name in _COPIER_FILES if name in listed):
        text = run_git("-C", template_src, "cat-file", "blob", f"{commit}:{name}")
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue
        for document in documents:
            if isinstance(document, dict):
                found += [key for key in UNSAFE_SETTINGS if document.get(key)]
    return sorted(set(found), key=list(UNSAFE_SETTINGS).index)


def _check_template(
    template_src: str, from_commit: str, to_ref: str, name: str, answers: str
) -> None:
    """Refuse an update the template's repository cannot serve, or one the portal never runs."""
    if not Path(template_src).is_dir():
        raise UpdateError(f"the template's repository {template_src} is not a local folder")
    if _resolve(template_src, from_commit) is None:
        raise UpdateError(
            f"the template's repository has no {from_commit} (the version {answers} records)"
        )
    if (problem := target_problem(template_src, to_ref, name)) is not None:
        raise UpdateError(problem)


def resolve_target(template_src: str, to_ref: str) -> str:
    """Return the commit ``to_ref`` names in the template's repository (:class:`UpdateError`)."""
    try:
        check_ref(to_ref, "target version")
    except GitArgumentError as exc:
        raise UpdateError(str(exc)) from None
    found = _resolve(template_src, to_ref)
    if found is None:
        raise UpdateError(f"the template's repository has no {to_ref} to update to")
    return found


def target_problem(template_src: str, to_ref: str, name: str) -> str | None:
    """Say why ``to_ref`` of the template ``name`` cannot be updated to, or None.

    The version must be in the template's local repository, and its Copier configuration
    may not have tasks, migrations or Jinja extensions (the portal never runs them). The
    ref is checked by the caller (:func:`~portal.integrations.git_args.check_ref`).
    """
    target = _resolve(template_src, to_ref)
    if target is None:
        return f"the template's repository has no {to_ref} to update to"
    unsafe = _unsafe_settings(template_src, target)
    if unsafe:
        kinds = " and ".join(UNSAFE_SETTINGS[key] for key in unsafe)
        return (
            f"{to_ref} of {name} has {kinds} ({', '.join(unsafe)}), which the portal never "
            "runs; nothing was written"
        )
    return None


def _write_service(
    service: Path,
    files: Mapping[str, bytes],
    executable: Collection[str],
    answers: tuple[str, RecordedSource],
) -> None:
    """Write ``files`` into ``service`` as the one clean commit of a new repository.

    ``answers``: the answers file and the source it records there (the local template).
    """
    for path in executable:
        if path not in files:
            raise UpdateError(f"executable file {path!r} is not one of the service's files")
    for path, data in files.items():
        try:
            check_repo_path(path, "service file")
        except GitArgumentError as exc:
            raise UpdateError(str(exc)) from None
        if ".git" in path.split("/") or path != PurePosixPath(path).as_posix():
            raise UpdateError(f"service file {path!r} is refused: not a plain relative path")
        target = service / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except OSError as exc:
            raise UpdateError(f"service file {path!r} cannot be written: {exc}") from None
        target.chmod(0o755 if path in executable else 0o644)
    _record(service / answers[0], answers[1], answers[0])
    run_git("-c", "init.templateDir=", "init", "--quiet", "--initial-branch=main", str(service))
    run_git("-C", str(service), *_SCRATCH_GIT, "add", "--all", "--force")
    run_git("-C", str(service), *_SCRATCH_GIT, "commit", "--quiet", "--no-verify",
            "--message", "the service before the update")  # fmt: skip


def _read_service(service: Path) -> tuple[dict[str, bytes], tuple[str, ...]]:
    """Return the folder's files (without ``.git``) and which of them are executable."""
    files: dict[str, bytes] = {}
    executable = []
    for root, folders, names in os.walk(service):
        if Path(root) == service:
            folders[:] = [folder for folder in folders if folder != ".git"]
        for name in (*names, *(folder for folder in folders if Path(root, folder).is_symlink())):
            path = Path(root, name)
            relative = path.relative_to(service).as_posix()
            if path.is_symlink():
                raise UpdateError(f"the update wrote a symbolic link, {relative}, which is refused")
            files[relative] = path.read_bytes()
            if path.stat().st_mode & stat.S_IXUSR:
                executable.append(relative)
    return files, tuple(sorted(executable))


def _run_in_worker(job: dict[str, Any], timeout: float, started: float) -> tuple[str, Any]:
    """Send ``job`` to a Copier worker and return its ``(status, payload)``."""
    try:
        return run_in_worker(job, timeout, started, "the update")
    except RenderTimeoutError as exc:
        return "timeout", str(exc)
    except RenderError as exc:  # the pool has been shut down
        return "error", str(exc)


def update_service(
    template_src: str,
    to_ref: str,
    files: Mapping[str, bytes],
    *,
    answers: Mapping[str, Any] | None = None,
    source: RecordedSource | None = None,
    executable: Collection[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    answers_file: str = ANSWERS_FILE,
) -> UpdateResult:
    """Run ``copier update`` to ``to_ref`` of ``template_src`` on one service's ``files``.

    ``template_src`` is the template's local git repository (both the recorded old version
    and ``to_ref`` are read from it); ``answers`` override the recorded answers; ``source``
    is recorded in the new answers file (default: the ``_src_path`` it recorded before);
    ``executable`` names the input files with the executable bit. Raises
    :class:`UpdateError` (:class:`UpdateTimeoutError` on timeout); nothing is left behind.
    """
    started = time.monotonic()
    try:
        check_ref(to_ref, "target version")
        template_src = check_url(
            str(Path(template_src).absolute()), {"file"}, "template repository"
        )
    except GitArgumentError as exc:
        raise UpdateError(str(exc)) from None
    src_path, from_commit = _recorded(files, answers_file)
    name = _template_name(src_path)
    scratch = Path(tempfile.mkdtemp(prefix="portal-update-"))
    try:
        _check_template(template_src, from_commit, to_ref, name, answers_file)
        service, copier_tmp = scratch / "service", scratch / "tmp"
        copier_tmp.mkdir()
        # Copier renders the old version from the recorded _src_path: the local repository.
        _write_service(service, files, executable, (answers_file, RecordedSource(template_src)))
        job = {
            "kind": "update",
            "ref": to_ref,
            "answers": dict(answers or {}),
            "answers_file": answers_file,
            "dest": str(service),
            "tmp": str(copier_tmp),
        }
        status, payload = _run_in_worker(job, timeout, started)
        if status != "ok":
            error = UpdateTimeoutError if status == "timeout" else UpdateError
            raise error(
                f"Copier failed to update {answers_file} from {from_commit} to {to_ref}: {payload}"
            )
        if payload["refused"] is not None:
            raise UpdateError(
                f"{to_ref} of {name} is refused (Copier: {payload['refused']}): the portal "
                "never runs tasks, migrations or Jinja extensions; nothing was written"
            )
        _record(service / answers_file, source or RecordedSource(src_path), answers_file)
        new_files, new_executable = _read_service(service)
    except GitError as exc:
        raise UpdateError(f"git failed while updating {answers_file}: {exc}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    new_answers = _load_answers(new_files.get(answers_file, b"{}"), answers_file)
    was_executable = set(executable)
    changed = [
        path
        for path, data in new_files.items()
        if files.get(path) != data or (path in was_executable) != (path in new_executable)
    ]
    return UpdateResult(
        files=new_files,
        deleted=tuple(sorted(set(files) - set(new_files))),
        changed=tuple(sorted(changed)),
        executable=new_executable,
        conflicts=conflicts_in(new_files),
        from_commit=from_commit,
        to_commit=None if new_answers.get(COMMIT_KEY) is None else str(new_answers[COMMIT_KEY]),
        warnings=tuple(payload["warnings"]),
        seconds=time.monotonic() - started,
    )


def _record(path: Path, source: RecordedSource, answers_file: str) -> None:
    try:
        record_source(path, source)
    except (OSError, AnswersFileError) as exc:
        raise UpdateError(f"{answers_file}: cannot record the template's source: {exc}") from None
