"""Running git for the GitOps writer: the environment, the remote's credentials, the locks.

A command that talks to the remote is bounded by a timeout and its failure to reach the
remote is a :class:`GitOpsUnavailableError`, so a request thread can answer 503 instead of
waiting; waits for the per-clone lock can be bounded the same way.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from portal.integrations.git import GitError, git_env, run_bounded

# Variables a parent git process (a hook, `git rebase -x`) may export; inherited, they
# would point our commands at another repository or index.
_INHERITED_GIT_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
)


class GitOpsError(GitError):
    """A write to the GitOps repository was refused or failed; the message says why."""


class GitOpsUnavailableError(GitOpsError):
    """The remote did not answer (unreachable, hung) or the clone stayed busy: try later."""


@dataclass(frozen=True)
class RemoteUrl:
    """A remote URL split into what may be stored on disk and what stays in memory."""

    full: str = field(repr=False)
    public: str
    hidden: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def parse(cls, url: str) -> RemoteUrl:
        """Strip credentials (an https user or token, any password) from the public form."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return cls(full=url, public=url)
        if "@" not in parts.netloc or not parts.scheme:
            return cls(full=url, public=url)
        userinfo, _, host = parts.netloc.rpartition("@")
        user, has_password, password = userinfo.partition(":")
        web = parts.scheme.lower() in {"http", "https"}
        if not web and not has_password:
            return cls(full=url, public=url)
        # Tokens travel as the https user name too (``https://TOKEN@host/...``).
        hidden = [userinfo, password] + ([user] if web else [])
        netloc = host if web or not user else f"{user}@{host}"
        return cls(
            full=url,
            public=urlunsplit(parts._replace(netloc=netloc)),
            hidden=tuple(sorted((h for h in hidden if len(h) >= 4), key=len, reverse=True)),
        )

    def env(self) -> dict[str, str]:
        """Config (in the environment, never on disk) that puts the credentials back."""
        if self.full == self.public:
            return {}
        index = int(os.environ.get("GIT_CONFIG_COUNT", "0") or "0")
        return {
            "GIT_CONFIG_COUNT": str(index + 1),
            f"GIT_CONFIG_KEY_{index}": f"url.{self.full}.insteadOf",
            f"GIT_CONFIG_VALUE_{index}": self.public,
        }

    def redact(self, text: str) -> str:
        """Replace every credential in ``text`` with ``***``."""
        for secret in self.hidden:
            text = text.replace(secret, "***")
        return text


def run(
    git_dir: Path | None,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    ok: Collection[int] = (0,),
    remote: RemoteUrl | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """Run git on ``git_dir`` without prompts; raise :class:`GitOpsError` on other exit codes.

    With ``remote`` the command talks to the remote: a timeout, or git's fatal exit code
    128 (no such repository, connection refused, unknown host), is a
    :class:`GitOpsUnavailableError`.
    """
    full_env = {k: v for k, v in git_env().items() if k not in _INHERITED_GIT_VARS}
    full_env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_LITERAL_PATHSPECS="1")
    if remote is not None:
        full_env.update(remote.env())
    full_env.update(env or {})
    command = ["git"] + ([f"--git-dir={git_dir}"] if git_dir is not None else []) + list(args)
    redact = remote.redact if remote is not None else str
    try:
        result = run_bounded(command, stdin=stdin, env=full_env, timeout=timeout)
    except subprocess.TimeoutExpired:
        if remote is not None:
            raise GitOpsUnavailableError(
                f"the GitOps remote did not answer within {timeout:g} s (git {args[0]})"
            ) from None
        raise GitOpsError(f"git {args[0]} timed out after {timeout:g} s") from None
    if result.returncode not in ok:
        message = redact(result.stderr.decode(errors="replace").strip())
        message = message or f"git {args[0]} failed with exit code {result.returncode}"
        if remote is not None and result.returncode == 128:
            raise GitOpsUnavailableError(f"the GitOps remote cannot be reached: {message}")
        raise GitOpsError(message)
    return result


def out(
    git_dir: Path | None,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    remote: RemoteUrl | None = None,
    timeout: float = 120,
) -> str:
    """Run git (as :func:`run`) and return its stripped stdout as text."""
    result = run(git_dir, *args, env=env, stdin=stdin, remote=remote, timeout=timeout)
    return result.stdout.decode(errors="replace").strip()


_THREAD_LOCKS: dict[Path, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextmanager
def exclusive(lock_file: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the per-path thread lock, then an ``flock`` on ``lock_file`` (other processes).

    With ``timeout``, waiting longer than that for either lock raises
    :class:`GitOpsUnavailableError`. Not re-entrant: a second ``flock`` from the same
    thread on a new descriptor would wait for itself.
    """
    key = lock_file.resolve()
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(key, threading.Lock())
    deadline = None if timeout is None else time.monotonic() + timeout
    if not thread_lock.acquire(timeout=-1 if timeout is None else timeout):
        raise _busy(timeout)
    try:
        with open(key, "a+b") as handle:
            _flock(handle.fileno(), deadline, timeout)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        thread_lock.release()


def _busy(timeout: float | None) -> GitOpsUnavailableError:
    return GitOpsUnavailableError(
        f"the GitOps repository stayed busy with another operation for {timeout:g} s"
    )


def _flock(fd: int, deadline: float | None, timeout: float | None) -> None:
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise _busy(timeout) from None
            time.sleep(0.02)
