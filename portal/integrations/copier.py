"""Copier: rendering templates in worker processes.

Copier changes the working directory and is not thread-safe, so :func:`render` runs it in a
small pool of long-lived worker interpreters (never the caller's process) that import Copier
once; a render past its timeout kills its worker. Renders use ``unsafe=False``, empty Copier
user settings (no ``trust`` list can enable tasks) and a scrubbed environment.
The template's own small expressions are evaluated by :mod:`portal.integrations.copier_jinja`.
Given a :class:`~portal.integrations.copier_answers.RecordedSource`, a render records the
template's canonical URL in the answers file instead of the local repository it rendered from.
"""

from __future__ import annotations

import atexit
import dataclasses
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from string import Template
from typing import Any, Protocol

import yaml

from portal.integrations import copier_worker
from portal.integrations.copier_answers import AnswersFileError, RecordedSource, record_source
from portal.integrations.copier_snapshot import snapshot_of
from portal.integrations.copier_worker import empty_out

POOL_SIZE = 2
DEFAULT_TIMEOUT = 60.0
MAX_JOBS_PER_WORKER = 200  # then a fresh interpreter, so nothing accumulates
WORKER_ENVIRONMENT = frozenset(
    {"PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "VIRTUAL_ENV", "XDG_CACHE_HOME"}
    | {"SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSH_COMMAND", "GIT_SSH", "SSH_AUTH_SOCK"}
    | {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}
)
ANSWERS_FILE = ".copier-answers.yml"


class RenderError(RuntimeError):
    """Copier could not render the template; the message is Copier's own."""


class RenderTimeoutError(RenderError):
    """The render did not finish in time (its worker was stopped)."""


@dataclasses.dataclass(frozen=True)
class RenderResult:
    """What a render produced."""

    dest: Path
    files: tuple[str, ...]  # relative POSIX paths, sorted, including the answers file
    template_commit: str | None  # Copier's `_commit` (a tag or `git describe`) if any
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    from_snapshot: bool = False  # rendered from a snapshot of the template commit


class Renderer(Protocol):
    """Renders a template at a ref into an empty destination folder."""

    def render(
        self,
        template_src: str,
        vcs_ref: str,
        answers: Mapping[str, Any],
        dest: Path,
        *,
        source: RecordedSource | None = None,
    ) -> RenderResult:
        """Render and return the files written; :class:`RenderError` on failure.

        ``source``: what the answers file records as the template (default: ``template_src``).
        """
        ...


def _worker_environment() -> dict[str, str]:
    # What git and Python need and none of the portal's variables: Copier's Jinja has an
    # `expandvars` filter that would copy PORTAL_* secrets into files bound for GitOps.
    env = {key: value for key, value in os.environ.items() if key in WORKER_ENVIRONMENT}
    env.update({key: value for key, value in os.environ.items() if key.startswith("LC_")})
    return env | {"PYTHONPATH": os.pathsep.join(filter(None, sys.path))}


class _Worker:
    # A fresh interpreter running copier_worker.serve: multiprocessing's "spawn" would re-import the
    # caller's __main__, which breaks scripts without a main guard.

    def __init__(self) -> None:
        self.jobs = 0
        self.conn, child = multiprocessing.Pipe()
        worker = copier_worker.__name__
        code = f"import sys; from {worker} import serve; serve(*map(int, sys.argv[1:]))"
        env = _worker_environment()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, str(child.fileno()), str(os.getpid())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            self.conn.close()
            raise
        finally:
            child.close()

    def stop(self, *, kill: bool = False) -> None:
        try:
            if not kill:
                self.conn.send(None)
                self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.conn.close()


class _Pool:
    def __init__(self, size: int) -> None:
        self._size = size
        self._idle: list[_Worker] = []
        self._count = 0
        self._closed = False
        self._cond = threading.Condition()

    def acquire(self, timeout: float) -> _Worker:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed and not self._idle and self._count >= self._size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RenderTimeoutError(f"no render worker became free in {timeout:g} s")
                self._cond.wait(remaining)
            if self._closed:
                raise RenderError("the renderer has been shut down")
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return _Worker()
        except BaseException:
            self.release(None)
            raise

    def release(self, worker: _Worker | None, *, healthy: bool = False) -> None:
        with self._cond:
            fresh = worker is not None and worker.jobs < MAX_JOBS_PER_WORKER
            keep = worker is not None and healthy and fresh and not self._closed
            if keep and worker is not None:
                self._idle.append(worker)
            else:
                self._count -= 1
            self._cond.notify()
        if worker is not None and not keep:
            worker.stop(kill=not healthy)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.stop()


_pool: _Pool | None = None
_pool_lock = threading.Lock()
_kept = False  # keep(): the workers outlive the runtimes


def _get_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Pool(POOL_SIZE)
            atexit.register(_pool.close)
        return _pool


def warm_up() -> None:
    """Start one worker now (importing Copier takes a moment) so the first render is quick."""
    pool = _get_pool()
    pool.release(pool.acquire(DEFAULT_TIMEOUT), healthy=True)


def shutdown() -> None:
    """Stop the idle workers now and busy ones when they finish; a later render restarts."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        atexit.unregister(pool.close)
        pool.close()


def release() -> None:
    """Stop the workers when a runtime is done with them (:func:`shutdown`), unless kept."""
    if not _kept:
        shutdown()


def keep() -> None:
    """Keep the workers after each runtime's stop, until the process exits.

    For a process that starts many apps one after another (the test suite): each would
    otherwise pay for starting a worker and importing Copier again.
    """
    global _kept
    _kept = True


def run_in_worker(
    job: dict[str, Any], timeout: float, started: float, doing: str
) -> tuple[str, Any]:
    """Send ``job`` to a Copier worker; return ``(status, payload)`` within ``timeout``.

    ``status`` is the worker's ``ok`` or ``error``, ``timeout`` (the worker is then killed)
    or ``died``; ``doing`` names the work in the timeout's message. ``started`` is when
    the caller's clock started. Raises :class:`RenderTimeoutError` when no worker is free
    in time, and :class:`RenderError` once the pool is shut down.
    """
    pool = _get_pool()
    worker = pool.acquire(max(0.0, timeout - (time.monotonic() - started)))
    worker.jobs += 1
    healthy = False
    try:
        worker.conn.send(job)
        if worker.conn.poll(max(0.0, timeout - (time.monotonic() - started))):
            status, payload = worker.conn.recv()
            healthy = True
        else:
            status, payload = "timeout", f"{doing} took more than {timeout:g} s"
    except (EOFError, OSError) as exc:
        status, payload = "died", f"the Copier worker stopped unexpectedly ({exc!r})"
    finally:
        pool.release(worker, healthy=healthy)  # an unhealthy worker is killed first
    return status, payload


def _listing(dest: Path) -> tuple[str, ...]:
    files = []
    for path in sorted(dest.rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(dest.resolve()):
            raise RenderError(f"the template wrote a link leaving the service: {path}")
        if path.is_file():
            files.append(path.relative_to(dest).as_posix())
    return tuple(files)


def render(
    template_src: str,
    vcs_ref: str,
    answers: Mapping[str, Any],
    dest: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    cache_dir: Path | None = None,
    snapshot_root: Path | None = None,
    source: RecordedSource | None = None,
) -> RenderResult:
    """Render ``template_src`` at ``vcs_ref`` into ``dest`` (absent or empty) in a worker.

    ``cache_dir`` is where Copier mirrors remote templates (its default is the user's cache);
    ``snapshot_root`` keeps snapshots of local git templates (:mod:`.copier_snapshot`), which
    render the same without a clone per render. ``source`` is recorded in the answers file
    as the template's ``_src_path`` (and ``_commit``) in place of ``template_src``.
    Raises :class:`RenderError` with Copier's message, or :class:`RenderTimeoutError`.
    """
    dest = Path(dest).absolute()
    existed = dest.exists()
    if existed and (not dest.is_dir() or any(dest.iterdir())):
        raise RenderError(f"destination {dest} is not empty: a scaffold only adds files")
    started = time.monotonic()
    snapshot = None if snapshot_root is None else snapshot_of(template_src, vcs_ref, snapshot_root)
    job: dict[str, Any] = {
        "src": template_src,
        "ref": vcs_ref,
        "answers": dict(answers),
        "dest": str(dest),
        "cache_dir": None if cache_dir is None else str(cache_dir),
        "snapshot": None if snapshot is None else snapshot.job(),
    }
    status, payload = run_in_worker(job, timeout, started, "rendering")
    if status != "ok":
        empty_out(dest, existed)
        error = RenderTimeoutError if status == "timeout" else RenderError
        raise error(f"Copier failed to render {template_src} at {vcs_ref}: {payload}")
    caught, from_snapshot, answers_file = payload
    try:
        files = _listing(dest)
        if source is not None and answers_file in files:
            record_source(dest / answers_file, source)
    except (RenderError, AnswersFileError) as exc:
        empty_out(dest, existed)
        if isinstance(exc, RenderError):
            raise
        raise RenderError(f"cannot record the template's source in {answers_file}: {exc}") from exc
    recorded = yaml.safe_load((dest / answers_file).read_text()) if answers_file in files else {}
    commit = recorded.get("_commit") if isinstance(recorded, dict) else None
    return RenderResult(
        dest=dest,
        files=files,
        template_commit=None if commit is None else str(commit),
        warnings=tuple(caught),
        seconds=time.monotonic() - started,
        from_snapshot=from_snapshot,
    )


@dataclasses.dataclass(frozen=True)
class CopierRenderer:
    """The real :class:`Renderer`: :func:`render` with a fixed timeout and cache folders."""

    timeout: float = DEFAULT_TIMEOUT
    cache_dir: Path | None = None
    snapshot_root: Path | None = None

    def render(
        self,
        template_src: str,
        vcs_ref: str,
        answers: Mapping[str, Any],
        dest: Path,
        *,
        source: RecordedSource | None = None,
    ) -> RenderResult:
        """Render in a worker process (see :func:`render`)."""
        return render(
            template_src,
            vcs_ref,
            answers,
            dest,
            timeout=self.timeout,
            cache_dir=self.cache_dir,
            snapshot_root=self.snapshot_root,
            source=source,
        )

    def warm_up(self, templates: Iterable[tuple[str, str]] = ()) -> None:
        """Start a worker now and make the snapshots of ``templates`` (``(src, ref)`` pairs)."""
        warm_up()
        if self.snapshot_root is not None:
            for template_src, vcs_ref in templates:
                snapshot_of(template_src, vcs_ref, self.snapshot_root)


@dataclasses.dataclass
class FakeRenderer:
    """Stand-in for unit tests: writes ``files`` (``$name`` placeholders filled from answers).

    Records every call in ``calls``; raises :class:`RenderError` with ``error`` when set.
    """

    files: Mapping[str, str] = dataclasses.field(default_factory=lambda: {"README.md": "# $name"})
    error: str | None = None
    commit: str = "v0.0.0"
    calls: list[tuple[str, str, dict[str, Any], Path]] = dataclasses.field(default_factory=list)

    def render(
        self,
        template_src: str,
        vcs_ref: str,
        answers: Mapping[str, Any],
        dest: Path,
        *,
        source: RecordedSource | None = None,
    ) -> RenderResult:
        """Write the configured files and an answers file like Copier's."""
        self.calls.append((template_src, vcs_ref, dict(answers), dest))
        if self.error is not None:
            raise RenderError(self.error)
        if dest.exists() and any(dest.iterdir()):
            raise RenderError(f"destination {dest} is not empty: a scaffold only adds files")
        for relative, content in self.files.items():
            path = dest / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(content).safe_substitute(answers))
        recorded = {"_commit": self.commit, "_src_path": template_src, **answers}
        if source is not None:
            recorded |= source.values()
        (dest / ANSWERS_FILE).write_text(yaml.safe_dump(recorded, sort_keys=True))
        return RenderResult(dest, _listing(dest), str(recorded["_commit"]))
