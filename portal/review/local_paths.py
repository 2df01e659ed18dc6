r"""Committed paths of a developer's machine: a home folder, ``C:\Users\...``, ``file://``.

A path of the machine a file was written on exists nowhere else: not in the cluster, not
in CI, not in a colleague's clone (``copier update`` cannot find a template recorded as
``/Users/alice/templates/x.git``), and it tells every reader of the repository a user
name and a folder layout. Every committed text file of the service folder is read line by
line.

Only paths that look like a developer machine's are reported, so paths of the container
image are not mistaken for them:

- everywhere: ``file://`` URLs, macOS homes and temporary folders (under ``/Users`` and
  ``/var/folders``), Windows drive paths (``C:\...``, ``D:/...``) and the portal's own
  data folder;
- outside container files: paths under ``/home``, ``/root`` and ``/tmp``. Container files
  are Dockerfiles (their paths are the image's, like an application user's home),
  Kubernetes manifests under ``deploy/`` (``mountPath: /tmp/cache`` is the pod's) and CI
  workflows under ``.github/`` (the runner's home is the CI machine's).

Binary files (a NUL byte in their first 8 KiB) are skipped; a symbolic link is judged by
its target, never followed. Copier's ``.copier-answers.yml`` gets no exception: the portal
records a template's canonical URL there as ``_src_path``, so a local path in it is an error
like anywhere else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from portal.integrations.kubernetes import Finding, Severity
from portal.review.policy import Rule

RULE = Rule(
    id="local-path",
    severity=Severity.ERROR,
    title="No paths of a developer's machine in committed files",
    reason="A path of the machine a file was written on exists nowhere else (cluster, CI, "
    "another clone): whatever reads it fails, and it leaks a user name and folder layout.",
)
READ_LIMIT = 8 * 1024 * 1024  # bytes read per file; service folders are far smaller
BINARY_PROBE = 8192
FINDINGS_PER_FILE = 10
SHOWN = 120  # characters of a path shown in a message
# A path starts a token: not inside a URL (https://host/home/x) nor a longer path.
_START = r"(?<![\w./:\\-])"
_PATH_CHARS = r"[^\s\"'`<>|,;)\]}]"
ANYWHERE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a file:// URL", re.compile(rf"\bfile:/{{2,}}{_PATH_CHARS}*", re.IGNORECASE)),
    ("a macOS home folder", re.compile(rf"{_START}/Users/[\w.-]+{_PATH_CHARS}*")),
    (
        "a macOS temporary folder",
        re.compile(rf"{_START}(?:/private)?/var/folders/{_PATH_CHARS}*"),
    ),
    (
        "a Windows drive path",
        re.compile(rf"{_START}[A-Za-z]:(?:\\{{1,2}}|/)[\w.$~-]{_PATH_CHARS}*"),
    ),
)
OUTSIDE_CONTAINER_FILES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # (?:...) keeps these patterns from reading as machine paths themselves.
    ("a Linux home folder", re.compile(rf"{_START}/(?:home)/[\w.-]+{_PATH_CHARS}*")),
    ("root's home folder", re.compile(rf"{_START}/(?:root)/{_PATH_CHARS}+")),
    # Looked for, not used: the rule finds /tmp paths in committed files.
    ("a temporary folder", re.compile(rf"{_START}/tmp/{_PATH_CHARS}+")),  # noqa: S108
)
_DOCKERFILE = re.compile(r"^(?:Dockerfile|Containerfile)(?:\..*)?$|\.(?:dockerfile|containerfile)$")
CONTAINER_FOLDERS = ("deploy", ".github")


def _machine_root(root: str | Path) -> tuple[str, re.Pattern[str]] | None:
    text = str(root).rstrip("/")
    # A one-level folder (/data, /srv) is as likely a container path as the portal's.
    if len(PurePosixPath(text).parts) < 3:
        return None
    pattern = re.compile(rf"{_START}{re.escape(text)}(?![\w.-]){_PATH_CHARS}*")
    return "the portal's data folder", pattern


def is_container_file(relative: PurePosixPath) -> bool:
    """Whether the file's paths are the container's, the pod's or the CI runner's."""
    return bool(_DOCKERFILE.search(relative.name)) or relative.parts[0] in CONTAINER_FOLDERS


def _patterns(
    relative: PurePosixPath, roots: Sequence[tuple[str, re.Pattern[str]]]
) -> tuple[tuple[str, re.Pattern[str]], ...]:
    extra = () if is_container_file(relative) else OUTSIDE_CONTAINER_FILES
    return (*roots, *ANYWHERE, *extra)


def _first_match(
    line: str, patterns: Sequence[tuple[str, re.Pattern[str]]]
) -> tuple[str, str] | None:
    for kind, pattern in patterns:
        found = pattern.search(line)
        if found:
            return kind, found.group()
    return None


def _finding(relative: str, where: str, message: str) -> Finding:
    return Finding(
        rule=RULE.id,
        severity=RULE.severity,
        object=relative,
        source=relative,
        path=where,
        message=message,
        reason=RULE.reason,
    )


def _shown(path: str) -> str:
    return path if len(path) <= SHOWN else path[:SHOWN] + "..."


def _scan_text(
    relative: PurePosixPath, text: str, roots: Sequence[tuple[str, re.Pattern[str]]]
) -> Iterator[Finding]:
    patterns = _patterns(relative, roots)
    found = 0
    for number, line in enumerate(text.splitlines(), start=1):
        match = _first_match(line, patterns)
        if match is None:
            continue
        found += 1
        if found > FINDINGS_PER_FILE:
            continue  # counted below, not listed
        kind, path = match
        message = (
            f"{relative}:{number}: {_shown(path)!r} ({kind}) exists only on the machine "
            "that wrote it"
        )
        yield _finding(str(relative), f"line {number}", message)
    if found > FINDINGS_PER_FILE:
        more = found - FINDINGS_PER_FILE
        message = f"{relative}: {more} more line{'s' * (more != 1)} with local paths"
        yield _finding(str(relative), "", message)


def _files(service_dir: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(service_dir, followlinks=False):
        dirs[:] = sorted(name for name in dirs if name != ".git")
        for name in sorted(files):
            yield Path(folder) / name
        # Links to folders are listed in dirs but never walked: judge them as links too.
        for name in list(dirs):
            if (Path(folder) / name).is_symlink():
                yield Path(folder) / name


def find_local_paths(
    service_dir: Path, machine_roots: Sequence[str | Path] = ()
) -> tuple[list[Finding], int]:
    """Report committed paths of a developer's machine in the text files of ``service_dir``.

    Returns the findings and how many text files were read. ``machine_roots`` are folders
    of the portal's own machine (its data folder): a path under one of them is reported in
    every file, Dockerfiles included.
    """
    roots = [root for root in map(_machine_root, machine_roots) if root is not None]
    findings: list[Finding] = []
    read = 0
    for path in _files(service_dir):
        relative = PurePosixPath(path.relative_to(service_dir).as_posix())
        if path.is_symlink():
            target = os.readlink(path)
            match = _first_match(target, (*roots, *ANYWHERE, *OUTSIDE_CONTAINER_FILES))
            if match is not None:
                kind, shown = match
                message = (
                    f"{relative} links to {_shown(shown)!r} ({kind}), which exists only on "
                    "the machine that wrote it"
                )
                findings.append(_finding(str(relative), "symlink target", message))
            continue
        with path.open("rb") as stream:
            data = stream.read(READ_LIMIT)
        if b"\0" in data[:BINARY_PROBE]:
            continue
        read += 1
        findings.extend(_scan_text(relative, data.decode("utf-8", errors="replace"), roots))
    return findings, read
