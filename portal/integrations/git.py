"""Running git, and reading files from git repositories (the catalog's ``git+URL#REF:PATH``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from portal.integrations.git_args import (
    CATALOG_SCHEMES,
    GitArgumentError,
    check_ref,
    check_repo_path,
    check_url,
)
from portal.integrations.processes import scrubbed_env

# Transports git may use for catalog reads, whatever the user's or system's git config says.
_CATALOG_PROTOCOLS = tuple(
    arg
    for scheme in ("protocol.allow=never", *(f"protocol.{s}.allow=always" for s in CATALOG_SCHEMES))
    for arg in ("-c", scheme)
)


class GitError(RuntimeError):
    """Raised when git cannot give us what was asked, with git's own message."""


class GitTimeoutError(GitError):
    """Git did not finish in time; it and every process it started were stopped."""


class GitFileReader(Protocol):
    """Reads one file at one ref of a repository."""

    def read_file(self, url: str, ref: str, path: str) -> bytes:
        """Return the bytes of ``path`` at ``ref`` in the repository at ``url``."""
        ...


def run_bounded(
    command: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` in a process group of its own; on timeout stop the whole group.

    Killing only git is not enough: ``git fetch`` runs ``git-remote-https`` (or ssh), which
    would live on, connected to the hung remote, after git is gone. Raises
    ``subprocess.TimeoutExpired`` once the group is gone.
    """
    with subprocess.Popen(
        list(command),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except BaseException:
            _stop_group(process)
            raise
    return subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM first: git removes its lock files on it; SIGKILL for whatever is left.
    for sig, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.communicate(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment git runs in: scrubbed of the portal's secrets, no prompts, C.

    The operator's ``GIT_CONFIG_COUNT``/``_KEY_n``/``_VALUE_n`` stay whole: they are git's
    own configuration (its name pattern would otherwise drop the keys and break the count).
    """
    env = scrubbed_env(keep=("GIT_CONFIG_",))
    return {**env, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(extra or {})}


def run_git(*args: str, cwd: Path | None = None, timeout: float = 120) -> str:
    """Run git without prompts and return its stdout, raising :class:`GitError` on failure."""
    try:
        result = run_bounded(["git", *args], cwd=cwd, timeout=timeout, env=git_env())
    except subprocess.TimeoutExpired:
        raise GitTimeoutError(f"git {args[0]} timed out after {timeout:g} s") from None
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise GitError(message or f"git {args[0]} failed")
    return result.stdout.decode(errors="replace")


class GitCliReader:
    """Keeps a bare mirror per repository in a cache folder and reads files with git."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._fetched: set[str] = set()

    def _mirror(self, url: str) -> Path:
        target = self.cache_dir / hashlib.sha256(url.encode()).hexdigest()[:24]
        if url in self._fetched:
            return target
        if (target / "HEAD").exists():
            run_git(
                "--git-dir",
                str(target),
                *_CATALOG_PROTOCOLS,
                "fetch",
                "--prune",
                "--quiet",
                "origin",
            )
        else:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            run_git(*_CATALOG_PROTOCOLS, "clone", "--mirror", "--quiet", "--", url, str(target))
        self._fetched.add(url)
        return target

    def _checked_mirror(self, url: str, ref: str, path: str) -> Path:
        """Check the location's values before they reach git; return the repository's mirror."""
        try:
            check_url(url, CATALOG_SCHEMES, "repository URL")
            check_ref(ref)
            check_repo_path(path)
        except GitArgumentError as exc:
            raise GitError(str(exc)) from None
        return self._mirror(url)

    def read_file(self, url: str, ref: str, path: str) -> bytes:
        """Return the file's bytes; :class:`GitError` names the repository, ref and path."""
        mirror = self._checked_mirror(url, ref, path)
        command = ["git", "--git-dir", str(mirror), "cat-file", "blob", "--end-of-options"]
        try:
            result = run_bounded([*command, f"{ref}:{path}"], timeout=60, env=git_env())
        except subprocess.TimeoutExpired as exc:
            raise GitTimeoutError(f"timed out reading {path} at {ref} from {url}") from exc
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip()
            raise GitError(f"cannot read {path} at {ref} from {url}: {message}")
        return result.stdout


class FakeGitReader:
    """In-memory stand-in for unit tests: ``files[(url, ref, path)] = bytes``."""

    def __init__(self, files: dict[tuple[str, str, str], bytes]) -> None:
        self.files = files

    def read_file(self, url: str, ref: str, path: str) -> bytes:
        """Return the stored bytes or raise :class:`GitError` like the real reader."""
        try:
            return self.files[(url, ref, path)]
        except KeyError:
            raise GitError(f"cannot read {path} at {ref} from {url}: not found") from None
