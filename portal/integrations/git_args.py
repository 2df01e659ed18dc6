"""Checks for every value that reaches a git command line: refs, commits, paths and URLs.

A value that starts with ``-`` would be read by git as an option (``--output=FILE`` makes
``git show`` write a file, ``--upload-pack=CMD`` makes ``git fetch`` run a command), so
each value is checked here before it is used, and call sites still separate values from
options (``--end-of-options`` before revisions, ``--`` before paths and URLs). Refs follow
the rules of ``git check-ref-format``; URLs must use a scheme from an allow-list.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

MAX_REF = 255
MAX_PATH = 4096
MAX_URL = 2048
CATALOG_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})
"""Schemes a catalog ``git+URL#REF:PATH`` location may use (``file`` includes local paths)."""

_SHA = re.compile(r"[0-9a-f]{40}")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRANSPORT = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP = re.compile(r"^(?:(?P<user>[^@/:\s]+)@)?(?P<host>[^@/:\s]+):(?P<path>.*)$")


class GitArgumentError(ValueError):
    """A value may not be given to git; the message names the value and the rule."""


def _ref_problem(ref: str) -> str | None:
    """Say which ``git check-ref-format`` rule (or one of ours) ``ref`` breaks, if any."""
    if not ref:
        return "is empty"
    if len(ref) > MAX_REF:
        return f"is longer than {MAX_REF} characters"
    if ref.startswith("-"):
        return "may not start with '-'"
    if _REF_FORBIDDEN.search(ref):
        return "may not contain spaces, control characters or any of ~ ^ : ? * [ \\"
    if ".." in ref:
        return "may not contain '..'"
    if "@{" in ref or ref == "@":
        return "may not contain '@{' nor be '@'"
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        return "may not start or end with '/' nor contain '//'"
    if ref.endswith("."):
        return "may not end with '.'"
    for part in ref.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return "may have no part that starts with '.' or ends with '.lock'"
    return None


def is_sha(value: str) -> bool:
    """Tell whether ``value`` is a full, lower-case hexadecimal object name."""
    return bool(_SHA.fullmatch(value))


def check_ref(ref: str, what: str = "ref") -> str:
    """Return ``ref`` if it is a full commit sha or a valid ref name; else refuse it."""
    if is_sha(ref):
        return ref
    problem = _ref_problem(ref)
    if problem is not None:
        raise GitArgumentError(f"{what} {ref[:300]!r} is refused: it {problem}")
    return ref


def check_sha(value: str, what: str = "commit") -> str:
    """Return ``value`` if it is a full lower-case commit sha; else refuse it."""
    if not is_sha(value):
        raise GitArgumentError(f"{what} {value[:300]!r} is refused: expected a full commit sha")
    return value


def check_branch(branch: str, what: str = "branch") -> str:
    """Return ``branch`` if ``refs/heads/<branch>`` is a valid ref and not ``HEAD``."""
    problem = _ref_problem(branch)
    if problem is None and branch == "HEAD":
        problem = "is HEAD"
    if problem is not None:
        raise GitArgumentError(f"{what} {branch[:300]!r} is refused: it {problem}")
    return branch


def check_repo_path(path: str, what: str = "path") -> str:
    """Return ``path`` if it is a relative path inside a repository that git cannot misread."""
    problem = None
    if not path:
        problem = "is empty"
    elif len(path) > MAX_PATH:
        problem = f"is longer than {MAX_PATH} characters"
    elif path.startswith("-"):
        problem = "may not start with '-'"
    elif path.startswith("/"):
        problem = "must be relative to the repository"
    elif _CONTROL.search(path):
        problem = "may not contain control characters"
    elif ".." in path.split("/"):
        problem = "may not contain '..' segments"
    if problem is not None:
        raise GitArgumentError(f"{what} {path[:300]!r} is refused: it {problem}")
    return path


def url_scheme(url: str, allowed: Collection[str], what: str = "URL") -> str:
    """Return the scheme of a git URL if it is allowed; refuse any URL git could misread.

    ``user@host:path`` is ``ssh``; an absolute local path is ``file``. ``transport::address``
    URLs (``ext::``, ``fd::``) and values that start with ``-`` are always refused.
    """
    shown = url[:300]
    scheme, user, host = _parse(url, what)
    if scheme not in allowed:
        permitted = ", ".join(sorted(allowed)) or "none"
        raise GitArgumentError(
            f"{what} {shown!r} is refused: {scheme} URLs are not allowed (allowed: {permitted})"
        )
    if user.startswith("-") or host.startswith("-"):
        raise GitArgumentError(f"{what} {shown!r} is refused: a user or host starts with '-'")
    return scheme


def check_url(url: str, allowed: Collection[str], what: str = "URL") -> str:
    """Return ``url`` if :func:`url_scheme` accepts it."""
    url_scheme(url, allowed, what)
    return url


def _parse(url: str, what: str) -> tuple[str, str, str]:
    """Return ``(scheme, user, host)`` of a git URL, or refuse what is not one."""
    shown = url[:300]
    if not url:
        raise GitArgumentError(f"{what} is empty")
    if len(url) > MAX_URL:
        raise GitArgumentError(f"{what} {shown!r} is refused: longer than {MAX_URL} characters")
    if url.startswith("-"):
        raise GitArgumentError(f"{what} {shown!r} is refused: it may not start with '-'")
    if _CONTROL.search(url):
        raise GitArgumentError(f"{what} {shown!r} is refused: it contains control characters")
    if _TRANSPORT.match(url):
        raise GitArgumentError(f"{what} {shown!r} is refused: transport::address URLs")
    if match := _SCHEME.match(url):
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise GitArgumentError(f"{what} {shown!r} is refused: {exc}") from None
        return match.group(1).lower(), parts.username or "", parts.hostname or ""
    if url.startswith("/"):
        return "file", "", ""
    if scp := _SCP.match(url):
        return "ssh", scp.group("user") or "", scp.group("host")
    raise GitArgumentError(f"{what} {shown!r} is refused: not a git URL")
