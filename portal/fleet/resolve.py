"""Resolving an update's conflicts: the team's edits, or its push, one more revision.

Copier leaves a conflict where the template's change and the team's edit collide (inline
markers, or a ``.rej`` file). The author or a member of the owning team writes the files
as they should be (and deletes the ``.rej`` files): the edits are committed on the
change's branch as its next revision (:meth:`GitOpsRepo.revise_edit_branch`), and the
change goes back to the checks, which fail again while any marker remains. A resolution
pushed to the branch instead is taken with :func:`recheck`. Only the service's own files
can be written, and a change that is merged, rejected or still being worked on cannot be
revised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlmodel import Session

from portal.api_errors import RefusedError
from portal.auth.identity import Identity
from portal.changes.edits import path_problem
from portal.changes.models import UPDATE_KIND, Change, ChangeStatus
from portal.changes.store import audit, set_step
from portal.clock import utcnow
from portal.integrations.copier_update import Conflict, conflicts_in
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_tree import read_files
from portal.review.decide import may_revise

# Update changes that can take a resolution: reviewed or waiting for review, not decided.
RESOLVABLE = (ChangeStatus.READY, ChangeStatus.CHANGES_REQUESTED)
MAX_FILE_BYTES = 1 << 20


class ResolutionRefusedError(RefusedError):
    """A refused resolution: 403, 404, 409 (``message``) or 422 (per field); nothing written."""


def change_conflicts(
    repo: GitOpsRepo, change: Change
) -> tuple[dict[str, bytes], tuple[Conflict, ...]]:
    """Return the service's files on the change's branch (relative paths) and their conflicts."""
    folder = f"services/{change.service}/"
    if not change.commit_sha:
        return {}, ()
    tree = read_files(repo, change.commit_sha, [folder], suffixes=None)
    files = {path.removeprefix(folder): data for path, data in tree.files.items()}
    return files, conflicts_in(files)


def _refuse(change: Change, identity: Identity, admin_group: str) -> None:
    if change.kind != UPDATE_KIND:
        raise ResolutionRefusedError(f"change {change.id} is not a template update", 404)
    if (reason := may_revise(change, identity, admin_group)) is not None:
        raise ResolutionRefusedError(reason, 403)
    if change.status not in RESOLVABLE or not change.commit_sha:
        raise ResolutionRefusedError(
            f"change {change.id} is {change.status.value}: only an update that is ready or "
            "sent back for changes can be revised",
            409,
        )


def _problems(
    service: str, files: Mapping[str, str], deleted: Sequence[str], present: Mapping[str, bytes]
) -> dict[str, str]:
    problems: dict[str, str] = {}
    for path, text in files.items():
        if (problem := path_problem(service, f"services/{service}/{path}")) is not None:
            problems[f"files.{path}"] = problem
        elif len(text.encode()) > MAX_FILE_BYTES:
            problems[f"files.{path}"] = "a file of over 1 MB is not edited here"
    for index, path in enumerate(deleted):
        if path not in present:
            problems[f"deleted[{index}]"] = f"{path} is not a file of services/{service}/"
        elif path in files:
            problems[f"deleted[{index}]"] = f"{path} is both written and deleted"
    if not files and not deleted:
        problems["files"] = "write or delete at least one file"
    return problems


def resolve(
    session: Session,
    repo: GitOpsRepo,
    change: Change,
    identity: Identity,
    admin_group: str,
    author_email: str,
    *,
    files: Mapping[str, str],
    deleted: Sequence[str] = (),
) -> Change:
    """Commit the team's resolution as the change's next revision and send it to the checks.

    ``files`` are paths in the service folder with their new text; ``deleted`` paths
    there to remove (a ``.rej`` file once applied).
    """
    _refuse(change, identity, admin_group)
    present, _conflicts = change_conflicts(repo, change)
    if problems := _problems(change.service, files, deleted, present):
        raise ResolutionRefusedError("the resolution was refused", errors=problems)
    folder = f"services/{change.service}/"
    written = {f"{folder}{path}": text.encode() for path, text in files.items()}
    revision = change.revision + 1
    listing = ", ".join([*sorted(files), *(f"{path} (deleted)" for path in deleted)])
    message = (
        f"Resolve the update of {change.service}: revision {revision}\n\n{listing}\n\n"
        f"Change: {change.id}\nResolved-by: {identity.user_ref}\nRevision: {revision}\n"
    )
    change.commit_sha = repo.revise_edit_branch(
        change.branch,
        change.commit_sha or "",
        written,
        message,
        (identity.user_ref, author_email),
        deleted=[f"{folder}{path}" for path in deleted],
    )
    change.revision = revision
    change.status = ChangeStatus.CHECKING
    change.updated_at = utcnow()
    set_step(change, "commit", "done", change.commit_sha)
    set_step(change, "checks", "waiting")
    session.add(change)
    audit(session, change.id, identity.user_ref, "revised", f"resolution: {listing}")
    session.commit()
    session.refresh(change)
    return change


def recheck(
    session: Session, repo: GitOpsRepo, change: Change, identity: Identity, admin_group: str
) -> Change:
    """Take the commits someone pushed to the change's branch as its next revision; check it.

    A resolution may be pushed to the branch instead of written here. The branch must have
    moved forward from the commit that was checked (a rewritten branch is refused: what was
    reviewed is no longer in it); the change then goes back to the checks.
    """
    _refuse(change, identity, admin_group)
    repo.refresh()
    head = repo.head_of(change.branch)
    checked = change.commit_sha or ""
    if head is None:
        raise ResolutionRefusedError(f"branch {change.branch} is gone", 409)
    if head == checked:
        raise ResolutionRefusedError(
            f"nothing was pushed to {change.branch}: it is at {checked[:12]}, already checked",
            409,
        )
    if not repo.is_ancestor(checked, head):
        raise ResolutionRefusedError(
            f"{change.branch} was rewritten: {checked[:12]}, which was checked, is no longer in "
            "it; push new commits on top of it",
            409,
        )
    change.commit_sha = head
    change.revision += 1
    change.status = ChangeStatus.CHECKING
    change.updated_at = utcnow()
    set_step(change, "commit", "done", head)
    set_step(change, "checks", "waiting")
    session.add(change)
    audit(session, change.id, identity.user_ref, "revised", f"pushed to the branch: {head}")
    session.commit()
    session.refresh(change)
    return change
