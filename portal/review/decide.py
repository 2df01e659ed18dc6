"""Approve (merge), request changes, reject: who may, and what each does to git and the catalog."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from portal.auth.identity import Identity
from portal.catalog.importer import import_locations
from portal.config import Settings
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.review.models import Change, ChangeStatus
from portal.review.store import audit, finish

DECIDABLE = (ChangeStatus.READY, ChangeStatus.CHANGES_REQUESTED)


@dataclass
class DecisionError(Exception):
    """A refused decision: ``status`` is the HTTP status that fits (403 or 409)."""

    message: str
    status: int = 409

    def __str__(self) -> str:
        return self.message


def may_review(change: Change, identity: Identity, admin_group: str) -> str | None:
    """Return why ``identity`` may not decide on ``change``, or None when they may."""
    if identity.user_ref == change.requester_ref:
        return "the author of a change cannot approve or reject it; ask a teammate"
    if not (identity.is_member(change.owner_ref) or identity.is_admin(admin_group)):
        return f"only members of {change.owner_ref} or {admin_group} can decide on this change"
    return None


def may_revise(change: Change, identity: Identity, admin_group: str) -> str | None:
    """Return why ``identity`` may not revise ``change``'s answers, or None when they may.

    The author revises, or a member of the owning team (the author may be away); the
    platform admins too. A revision goes back to review, so it needs no approver here.
    """
    if identity.user_ref == change.requester_ref or identity.is_member(change.owner_ref):
        return None
    if identity.is_admin(admin_group):
        return None
    return f"only the author, members of {change.owner_ref} or {admin_group} can revise it"


def _check_may(change: Change, identity: Identity, settings: Settings) -> None:
    if (reason := may_review(change, identity, settings.admin_group)) is not None:
        raise DecisionError(reason, 403)


def approve(
    session: Session,
    change: Change,
    identity: Identity,
    gitops: GitOpsRepo,
    settings: Settings,
) -> Change:
    """Merge the change's branch into main, register the new catalog entity, record who.

    Approving a change that is already merged changes nothing (two approvals merge once).
    """
    if change.status is ChangeStatus.MERGED:
        return change
    _check_may(change, identity, settings)
    if change.status not in DECIDABLE:
        raise DecisionError(f"a change that is {change.status.value} cannot be approved")
    message = (
        f"Merge {change.branch}: {change.title}\n\n"
        f"Change: {change.id}\nRequested-by: {change.requester_ref}\n"
        f"Approved-by: {identity.user_ref}\n"
    )
    change.merge_sha = gitops.merge(
        change.branch, message, (identity.display_name, settings.git_author_email)
    )
    change.approved_by = identity.user_ref
    audit(session, change.id, identity.user_ref, "approved", f"merged as {change.merge_sha}")
    finish(session, change, ChangeStatus.MERGED)
    location = f"git+{gitops.public_url}#{gitops.main}:services/{change.service}/catalog-info.yaml"
    report = import_locations(session, [location], settings, git=GitOpsFileReader(gitops))
    if report.problems:
        detail = "; ".join(str(problem) for problem in report.problems)
        audit(session, change.id, identity.user_ref, "catalog", detail)
        session.commit()
    return change


@dataclass(frozen=True)
class GitOpsFileReader:
    """Reads catalog files of the GitOps repository through the portal's own clone."""

    gitops: GitOpsRepo

    def read_file(self, url: str, ref: str, path: str) -> bytes:
        """Return ``path`` at ``ref`` (the URL is the clone's remote, so it is not needed)."""
        try:
            return self.gitops.read_file(ref, path)
        except GitError as exc:
            raise GitError(f"cannot read {path} at {ref} from {url}: {exc}") from exc


def request_changes(
    session: Session, change: Change, identity: Identity, settings: Settings, comment: str
) -> Change:
    """Send the change back to its author with a comment (the branch stays)."""
    _check_may(change, identity, settings)
    if change.status not in DECIDABLE:
        raise DecisionError(f"a change that is {change.status.value} cannot be sent back")
    if not comment.strip():
        raise DecisionError("comment: say what should change", 422)
    audit(session, change.id, identity.user_ref, "changes_requested", comment.strip())
    finish(session, change, ChangeStatus.CHANGES_REQUESTED)
    return change


def reject(
    session: Session,
    change: Change,
    identity: Identity,
    gitops: GitOpsRepo,
    settings: Settings,
    comment: str = "",
) -> Change:
    """Close the change and delete its branch."""
    if change.status is ChangeStatus.REJECTED:
        return change
    _check_may(change, identity, settings)
    if change.status not in (*DECIDABLE, ChangeStatus.FAILED):
        raise DecisionError(f"a change that is {change.status.value} cannot be rejected")
    gitops.delete_branch(change.branch)
    audit(session, change.id, identity.user_ref, "rejected", comment.strip())
    finish(session, change, ChangeStatus.REJECTED)
    return change
