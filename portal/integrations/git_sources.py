"""Where the portal may fetch git repositories from: allowed schemes, hosts and addresses.

Registering a template makes the portal fetch a URL an admin typed, so the URL is held to a
policy (``PORTAL_TEMPLATE_URL_SCHEMES``, ``PORTAL_TEMPLATE_URL_HOSTS``): an allowed scheme;
a listed host, or, with no list, a host whose every address is a public one. Link-local
addresses (``169.254.0.0/16``, ``fe80::/10``: cloud metadata services) are refused even
for a listed host. For http(s) the addresses checked are the ones git connects to (pinned
with ``http.curloptResolve``, redirects off), so a second DNS answer cannot point
elsewhere; ssh and git resolve the name again themselves.

The catalog's reader of git locations lives here too (:class:`GitCatalogReader`): besides
files it lists folders, so ``git+URL#REF:catalogs`` reads every file under ``catalogs``.
Its values are checked and kept apart from options like every other git call.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from portal.integrations.git import (
    GitCliReader,
    GitError,
    GitFileReader,
    GitTimeoutError,
    git_env,
    run_bounded,
)
from portal.integrations.git_args import (
    GitArgumentError,
    url_scheme,
)

Resolver = Callable[[str, int], list[str]]
"""``resolve(host, port)`` returns the IP addresses a connection to ``host`` would try."""

KNOWN_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})
_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
_REGULAR_FILE_MODES = frozenset({"100644", "100755"})


class SourceRefusedError(ValueError):
    """The policy does not allow fetching from this URL; the message says which rule."""


class SourceUnreachableError(ValueError):
    """The host of a URL does not resolve (said no differently than any failed fetch)."""


@dataclass(frozen=True)
class SourcePolicy:
    """The schemes and hosts fetches may use; no hosts: any host with public addresses."""

    schemes: frozenset[str] = frozenset({"https", "ssh"})
    hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, schemes: Iterable[str], hosts: Iterable[str]) -> SourcePolicy:
        """Build a policy from setting values (case-insensitive)."""
        return cls(
            frozenset(s.strip().lower() for s in schemes if s.strip()),
            frozenset(h.strip().lower().strip("[]") for h in hosts if h.strip()),
        )


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver; :class:`SourceUnreachableError` if it fails."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise SourceUnreachableError(f"cannot resolve {host}") from exc
    return sorted({str(info[4][0]) for info in found})


def _host_port(url: str, scheme: str) -> tuple[str, int]:
    if "://" not in url:  # user@host:path
        return url.split("@", 1)[-1].split(":", 1)[0].lower(), _DEFAULT_PORTS["ssh"]
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise SourceRefusedError(f"{url!r}: {exc}") from None
    return (parts.hostname or "").lower(), port or _DEFAULT_PORTS[scheme]


def _address_problem(address: str, listed: bool) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return "a link-local, multicast or unspecified address (never fetched)"
    if not listed and not ip.is_global:
        return (
            "a loopback, private or reserved address "
            "(list the host in PORTAL_TEMPLATE_URL_HOSTS to allow it)"
        )
    return None


def vet_source(url: str, policy: SourcePolicy, resolve: Resolver = system_resolver) -> list[str]:
    """Check ``url`` against ``policy``; return the git options a fetch from it must use.

    Raises :class:`SourceRefusedError` naming the rule, and :class:`SourceUnreachableError`
    when the host does not resolve. The options allow only the URL's protocol and, for
    http(s), pin the connection to the addresses checked here.
    """
    try:
        scheme = url_scheme(url, policy.schemes & KNOWN_SCHEMES, "URL")
    except GitArgumentError as exc:
        raise SourceRefusedError(str(exc)) from None
    options = ["-c", "protocol.allow=never", "-c", f"protocol.{scheme}.allow=always"]
    if scheme == "file":
        if not url.lower().startswith("file:///"):
            raise SourceRefusedError(f"{url!r}: a file URL must be file:///absolute/path")
        return options
    host, port = _host_port(url, scheme)
    if not host:
        raise SourceRefusedError(f"{url!r}: the URL names no host")
    listed = host in policy.hosts
    if policy.hosts and not listed:
        raise SourceRefusedError(f"{url!r}: host {host} is not in PORTAL_TEMPLATE_URL_HOSTS")
    addresses = resolve(host, port)
    if not addresses:
        raise SourceUnreachableError(f"cannot resolve {host}")
    for address in addresses:
        if problem := _address_problem(address, listed):
            raise SourceRefusedError(f"{url!r}: host {host} resolves to {problem}")
    if scheme in {"http", "https"}:
        pinned = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
        options += ["-c", f"http.curloptResolve={host}:{port}:{pinned}"]
        options += ["-c", "http.followRedirects=false"]
    return options


@runtime_checkable
class GitFolderReader(GitFileReader, Protocol):
    """Reads files of a repository, and lists the files of a folder in it."""

    def list_folder(self, url: str, ref: str, path: str) -> list[str] | None:
        """Return every file under folder ``path`` at ``ref`` (relative to it), or None.

        None means ``path`` is not a folder (a file, or nothing): the caller reads it as a
        file, and reading says what is wrong.
        """
        ...


class GitCatalogReader(GitCliReader):
    """The catalog's git reader: files as :class:`GitCliReader` reads them, and folders."""

    def list_folder(self, url: str, ref: str, path: str) -> list[str] | None:
        """Return the regular files under ``path`` at ``ref``, relative to ``path``, or None.

        One ``git ls-tree -r`` of the path: a folder yields the files below it, a file
        yields itself (None here). Symbolic links and submodules are left out: a link's
        blob is its target's name, not YAML, and a submodule is another repository.
        """
        mirror = self._checked_mirror(url, ref, path)
        # Literal pathspecs: a path such as ":(glob)**" names a folder, not a pattern.
        command = ["git", "--literal-pathspecs", "--git-dir", str(mirror), "ls-tree"]
        command += ["-r", "-z", "--full-tree", "--end-of-options", ref, "--", path]
        try:
            result = run_bounded(command, timeout=60, env=git_env())
        except subprocess.TimeoutExpired as exc:
            raise GitTimeoutError(f"timed out listing {path} at {ref} from {url}") from exc
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip()
            raise GitError(f"cannot list {path} at {ref} from {url}: {message}")
        prefix = "" if path == "." else path.rstrip("/") + "/"
        entries = [e.partition("\t") for e in result.stdout.decode(errors="replace").split("\0")]
        names = [(info.split(" ")[0], name) for info, _, name in entries if name]
        if not names or any(name == path for _, name in names):
            return None  # nothing there, or a file: reading it says which
        return [
            name.removeprefix(prefix)
            for mode, name in names
            if mode in _REGULAR_FILE_MODES and name.startswith(prefix)
        ]
