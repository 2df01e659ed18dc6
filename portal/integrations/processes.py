"""Starting the portal's child processes: a scrubbed environment, and death with the portal.

Every tool the portal runs (checkov, promtool, kubectl, Prometheus, the Copier workers, git)
gets an environment without the portal's own settings (``PORTAL_*``: the GitOps URL with
its token, the database URL, the signing key) and without anything named like a secret.
On Linux a short-lived tool also gets ``PR_SET_PDEATHSIG``: if the portal is killed, even
with ``kill -9``, the kernel kills the tool too instead of leaving it running unowned.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# Whole words and parts of names: GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY, PGPASSWORD, API_KEY.
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|KEY|CREDENTIAL", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_WEB_SCHEMES = ("http://", "https://")
_PR_SET_PDEATHSIG = 1
_PARENT_POLL_SECONDS = 0.5


def is_secret_variable(name: str) -> bool:
    """Tell whether an environment variable must not reach a child process."""
    return name.upper().startswith("PORTAL_") or _SECRET_NAME.search(name) is not None


def scrubbed_env(
    environ: Mapping[str, str] | None = None, *, keep: tuple[str, ...] = (), **extra: str
) -> dict[str, str]:
    """Return ``environ`` (default: this process's) without the portal's settings and secrets.

    Drops every ``PORTAL_*`` variable and every variable whose name contains TOKEN,
    SECRET, PASSWORD, PASSWD, PASSPHRASE, KEY or CREDENTIAL, except names starting with
    one of ``keep``; then adds ``extra``. A child that needs a credential (git pushing to
    the GitOps remote) gets it passed explicitly by its caller, never inherited.
    """
    source = os.environ if environ is None else environ
    env = {
        name: value
        for name, value in source.items()
        if name.startswith(keep) or not is_secret_variable(name)
    }
    env.update(extra)
    return env


def redact_credentials(text: str) -> str:
    """Replace credentials in every URL of ``text`` with ``***`` (safe to print and log).

    An http(s) URL loses its whole user part (tokens travel as the user name); other
    schemes keep the user name (``ssh://git@host``) and lose a password.
    """

    def replace(match: re.Match[str]) -> str:
        scheme, userinfo = match["scheme"], match["userinfo"]
        if scheme.lower() in _WEB_SCHEMES:
            return f"{scheme}***@"
        user, has_password, _ = userinfo.partition(":")
        return f"{scheme}{user}:***@" if has_password else match[0]

    return _URL_USERINFO.sub(replace, text)


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Looked up once here: the child between fork and exec must not load libraries.
_PRCTL = _load_prctl()


def die_with_parent() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes the child die when this process dies (Linux).

    The signal is tied to the thread that starts the child, so use it only for children
    waited for by that thread (``subprocess.run``); None where the kernel cannot do it.
    """
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the portal died before prctl: nobody will signal
            os._exit(1)

    return preexec


def run_tool(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float,
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion (text output captured) that dies if the portal dies.

    ``env`` is given explicitly (build it with :func:`scrubbed_env` or an allow-list).
    Raises ``OSError`` and ``subprocess.TimeoutExpired`` like ``subprocess.run``.
    """
    # preexec_fn is the only way to call prctl in the child; it only calls prctl and getppid.
    return subprocess.run(
        list(command),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=die_with_parent(),
    )


def exit_with_parent(parent: int, poll_seconds: float = _PARENT_POLL_SECONDS) -> None:
    """In a long-lived child: exit as soon as ``parent`` is gone (a daemon thread polls).

    For children a pool keeps across threads, where ``PR_SET_PDEATHSIG`` would fire when
    the thread that started them ends rather than the portal.
    """

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(poll_seconds)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def process_alive(pid: int) -> bool:
    """Tell whether a process runs (a zombie waiting for a parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
