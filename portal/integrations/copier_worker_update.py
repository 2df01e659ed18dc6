"""The inside of a Copier worker process for an update job: ``copier update`` of one service.

:mod:`portal.integrations.copier_update` prepares the service as a git repository with one
clean commit, its answers file pointing at the template's local repository, and sends the
job; :func:`.copier_worker.serve` hands it here. Copier's public ``run_update`` takes no
template source: it reads the recorded ``_src_path`` and ``_commit`` and renders the old
version from there, which is why the parent rewrites ``_src_path`` first.

Every temporary folder Copier makes (template clones, the old and new renders) goes into
the job's scratch folder, which the parent removes whatever happens, so a worker killed on
timeout leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any


def run_update_job(copier: Any, job: dict[str, Any]) -> dict[str, Any]:
    """Update the service at ``job["dest"]`` to ``job["ref"]``.

    Returns ``{"refused": reason or None, "warnings": [...]}``: ``refused`` when Copier
    finds unsafe features (tasks, migrations, Jinja extensions) before writing anything.
    """
    from copier.errors import UnsafeTemplateError  # Copier is imported in workers only

    previous_tempdir = tempfile.tempdir
    tempfile.tempdir = job["tmp"]
    os.environ["COPIER_CACHE_DIR"] = os.path.join(job["tmp"], "cache")
    refused = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                _run_update(copier, job)
            except UnsafeTemplateError as exc:  # raised before Copier writes anything
                refused = f"{exc}".splitlines()[0].rstrip(".")  # the rest is about --trust
        return {
            "refused": refused,
            "warnings": [f"{item.category.__name__}: {item.message}" for item in caught],
        }
    finally:
        tempfile.tempdir = previous_tempdir
        os.environ.pop("COPIER_CACHE_DIR", None)


def _run_update(copier: Any, job: dict[str, Any]) -> None:
    copier.run_update(
        job["dest"],
        data=job["answers"],
        answers_file=job["answers_file"],
        vcs_ref=job["ref"],
        settings=copier.Settings(),  # no user defaults and no user `trust` list
        unsafe=False,
        defaults=True,  # new questions take their defaults
        overwrite=True,
        conflict="inline",
        quiet=True,
    )
