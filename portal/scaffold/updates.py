"""The render stage of a template update: ``copier update`` of one service, committed.

An update change (kind ``template-update``, proposed by :mod:`portal.fleet.propose`) names
the service, its template and the version to bring it to (``answers["to_ref"]``, with the
answers given for new questions in ``answers["answers"]``). The render stage reads the
service folder from ``main``, runs ``copier update`` on it in a Copier worker process
(:mod:`portal.integrations.copier_update`: a clean tree, ``unsafe=False``, new questions
take their defaults) and commits the result on the change's branch: every file the update
added or changed, every file it deleted, and the shipped SLO rules again when the update
changed ``slo.yaml``. Conflicts are committed as Copier leaves them (inline markers, or
``.rej`` files), never dropped: the ``template conflicts`` check then fails until the team
resolves them (:mod:`portal.review.template_conflicts`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from portal.changes.environments import TEMPLATE_VARIABLE as ENVIRONMENTS_VARIABLE
from portal.changes.models import Change
from portal.integrations.copier_answers import RecordedSource
from portal.integrations.copier_update import (
    UpdateError,
    UpdateResult,
    resolve_target,
    update_service,
)
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_tree import read_files
from portal.review.slo_rules_shipped import SLO_FILE
from portal.scaffold.registry.offered import OfferedTemplate
from portal.scaffold.slo_rules import rule_files
from portal.slo.compiler.errors import InvalidSpecError

_EXECUTABLE = "100755"
MAX_SERVICE_BYTES = 50 << 20  # a service folder is manifests and code, not data


def update_target(change: Change) -> tuple[str, dict[str, Any]]:
    """Return the version an update change brings its service to, and the answers given."""
    target = change.answers.get("to_ref")
    given = change.answers.get("answers") or {}
    if not isinstance(target, str) or not isinstance(given, dict):
        raise UpdateError(f"update change {change.id} names no version to update to")
    return target, given


def service_folder(repo: GitOpsRepo, base: str, service: str) -> tuple[dict[str, bytes], list[str]]:
    """Return the files of ``services/<service>`` at ``base`` and those that are executable.

    Paths are relative to the service folder, as Copier sees them.
    """
    folder = f"services/{service}/"
    tree = read_files(repo, base, [folder], suffixes=None, max_bytes=MAX_SERVICE_BYTES)
    if tree.too_large:
        raise UpdateError(f"{tree.too_large[0]} is too large to update (over 50 MB)")
    if not tree.files:
        raise UpdateError(f"main has no {folder}: there is nothing to update")
    modes = repo.entry_modes(base, list(tree.files))
    files = {path.removeprefix(folder): data for path, data in tree.files.items()}
    executable = [path.removeprefix(folder) for path, mode in modes.items() if mode == _EXECUTABLE]
    return files, executable


def updated_files(service: str, result: UpdateResult, base: dict[str, bytes]) -> dict[str, bytes]:
    """Return the repository files an update writes: what it changed, and the SLO rules.

    The rules are regenerated from the updated ``slo.yaml`` when the update changed it; a
    spec that no longer compiles gets none (the checks then say why).
    """
    folder = f"services/{service}/"
    written = {f"{folder}{path}": result.files[path] for path in result.changed}
    if SLO_FILE in result.changed:
        everything = {f"{folder}{path}": data for path, data in result.files.items()}
        with contextlib.suppress(InvalidSpecError, ValueError):
            written.update(rule_files(service, everything))
    return {
        path: data for path, data in written.items() if base.get(path.removeprefix(folder)) != data
    }


def update_message(change: Change) -> str:
    """Return the commit message of an update change's branch."""
    target, _given = update_target(change)
    batch = change.answers.get("batch")
    return (
        f"Update {change.service} to {change.template} {target}\n\n"
        f"{change.reason or ''}\n\n"
        f"Change: {change.id}\n"
        + (f"Batch: {batch}\n" if batch else "")
        + f"Requested-by: {change.requester_ref}\nRevision: {change.revision}\n"
    )


def update_and_commit(
    repo: GitOpsRepo,
    template: OfferedTemplate,
    change: Change,
    environments: list[str],
    message: str,
    author: tuple[str, str],
) -> UpdateResult:
    """Update the change's service on the newest ``main`` and push the change's branch.

    ``environments`` are the repository's (the template's overlays are made for them).
    Raises :class:`UpdateError` when the update cannot be made (the reason names the file
    or the version); nothing is pushed then.
    """
    target, given = update_target(change)
    base = repo.resolve(repo.main)
    files, executable = service_folder(repo, base, change.service)
    data = {**given, ENVIRONMENTS_VARIABLE: environments}
    source = template.source
    if source is not None and source.commit is not None:
        # A registered template's services record the commit they were rendered from (its
        # mirror's tags are its own): the commit of the version updated to, not the pin.
        source = RecordedSource(source.url, resolve_target(template.src, target))
    result = update_service(
        template.src, target, files, answers=data, source=source, executable=executable
    )
    folder = f"services/{change.service}/"
    written = updated_files(change.service, result, files)
    deleted = [f"{folder}{path}" for path in result.deleted]
    if not written and not deleted:
        raise UpdateError(
            f"{change.service} is already at {result.to_commit or target}: "
            "the update changes nothing"
        )
    modes = [f"{folder}{path}" for path in result.executable]
    change.commit_sha = repo.create_edit_branch(
        change.branch,
        base,
        written,
        message,
        author,
        executable=[path for path in modes if path in written],
        deleted=deleted,
    )
    return result
