"""The inside of a Copier worker process: receive a render or update job, run Copier, reply.

Runs in a fresh interpreter that :mod:`portal.integrations.copier` starts (never in the
portal's process): Copier is imported here once per worker, changes the working directory
freely, and every failure goes back to the parent as a message. A job with ``"kind":
"update"`` is a ``copier update`` (:mod:`.copier_worker_update`); every other job renders.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from portal.integrations.copier_snapshot import DEFAULT_ANSWERS_FILE, Snapshot, render_snapshot
from portal.integrations.copier_worker_update import run_update_job
from portal.integrations.processes import exit_with_parent


def serve(fd: int, parent: int) -> None:
    """Worker loop on the connection ``fd``: one job at a time until told to stop or orphaned."""
    exit_with_parent(parent)
    import copier  # imported once per worker, never in the portal process

    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    home = os.getcwd()
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            run = run_update_job if job.get("kind") == "update" else _copy
            reply: tuple[Any, ...] = ("ok", run(copier, job))
        except BaseException as exc:  # the parent gets every failure as a message
            reply = ("error", f"{type(exc).__name__}: {exc}".strip())
        finally:
            os.chdir(home)
        conn.send(reply)


def _copy(copier: Any, job: dict[str, Any]) -> tuple[list[str], bool, str]:
    """Render the job; return Copier's warnings, the snapshot's use and the answers file.

    The answers file is relative to the destination.
    """
    os.environ.pop("COPIER_CACHE_DIR", None)
    if job["cache_dir"] is not None:
        os.environ["COPIER_CACHE_DIR"] = job["cache_dir"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_snapshot = job["snapshot"] is not None and _copy_snapshot(copier, job, caught)
        if from_snapshot:
            answers_file = Snapshot.from_job(job["snapshot"]).answers_file
        else:
            answers_file = _answers_file(_run_copy(copier, job["src"], job["ref"], job))
    return (
        [f"{item.category.__name__}: {item.message}" for item in caught],
        from_snapshot,
        answers_file,
    )


def _answers_file(worker: Any) -> str:
    """Return the answers file a finished Copier worker wrote (Copier's default if unsure)."""
    try:
        return str(worker.answers_relpath)
    except Exception:  # Copier's internals: the default name is right for nearly all templates
        return DEFAULT_ANSWERS_FILE


def _run_copy(copier: Any, src: str, ref: str | None, job: dict[str, Any]) -> Any:
    return copier.run_copy(
        src,
        job["dest"],
        data=job["answers"],
        vcs_ref=ref,
        settings=copier.Settings(),  # no user defaults and no user `trust` list
        unsafe=False,
        defaults=True,
        overwrite=False,
        quiet=True,
        cleanup_on_error=True,
    )


def _copy_snapshot(copier: Any, job: dict[str, Any], caught: list[Any]) -> bool:
    """Render from the job's snapshot; False (nothing left behind) to render from git instead."""
    dest, render = Path(job["dest"]), functools.partial(_run_copy, copier, ref=None, job=job)
    existed = dest.exists()
    if render_snapshot(render, Snapshot.from_job(job["snapshot"]), dest):
        return True
    empty_out(dest, existed)
    caught.clear()
    return False


def empty_out(dest: Path, existed: bool) -> None:
    """Remove what a failed render wrote; a folder that existed before is left empty."""
    shutil.rmtree(dest, ignore_errors=True)
    if existed:  # leave it as it was: empty
        dest.mkdir(exist_ok=True)
