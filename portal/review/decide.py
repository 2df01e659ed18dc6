"""Approve (merge), request changes, reject: who may, and what each does to git and the catalog.

An approval passes the gate of :mod:`.gate` first: failed, errored or unfinished checks
refuse it, unless a platform admin approves over failed ones with a written reason.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

from sqlmodel import Session

from portal.auth.identity import Identity
from portal.catalog.importer import import_locations
from portal.changes.claims import (
    DecisionClaim,
    claim_decision,
    decide_without_git,
    note_override,
    release_decision,
    settle_decision,
)
from portal.changes.gitops import GitOpsFileReader
from portal.changes.models import Change, ChangeStatus
from portal.changes.store import audit, checks_of
from portal.config import Settings
from portal.integrations.gitops import (
    BranchMovedError,
    GitOpsRepo,
    MergeConflictError,
    RefNotFoundError,
)
from portal.review.gate import (
    CHECKS_FIELD,
    REASON_FIELD,
    Override,
    clean_reason,
    commit_section,
    gate_of,
    reason_problem,
)

DECIDABLE = (ChangeStatus.READY, ChangeStatus.CHANGES_REQUESTED)
OVERRIDE_ACTION = "approve-override"
REJECTABLE = (*DECIDABLE, ChangeStatus.FAILED, ChangeStatus.CONFLICTED)
_T = TypeVar("_T")


@dataclass
class DecisionError(Exception):
    """A refused decision: ``status`` is the HTTP status that fits (403, 409 or 422).

    ``field`` names the request field at fault (422); ``blocking`` and ``unfinished`` name
    the checks that stopped an approval (409).
    """

    message: str
    status: int = 409
    field: str | None = None
    blocking: tuple[str, ...] = ()
    unfinished: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


def may_review(change: Change, identity: Identity, admin_group: str) -> str | None:
    """Return why ``identity`` may not decide on ``change``, or None when they may."""
    if identity.token is not None:  # a machine proposes; only people decide
        return "an API token may propose changes but never approve, reject or send them back"
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
    override: Override | None = None,
) -> Change:
    """Merge the change's branch into main, register the new catalog entity, record who.

    Approving a change that is already merged changes nothing (two approvals merge once,
    with one audit event). Concurrent decisions are serialised by a claim on the change:
    who loses it gets a 409 and git is not touched. The checks are read once the claim is
    held, so a re-run of the checks cannot slip between the gate and the merge: failed,
    errored or unfinished checks refuse the approval (409 naming them), unless
    ``override`` (a platform admin's reason and the failed checks they read) goes over
    exactly the checks that failed.
    """
    if change.status is ChangeStatus.MERGED:
        return change
    _check_may(change, identity, settings)
    if override is not None:
        override = _checked_override(override, identity, settings)
    try:
        claimed = _carry_out(
            session,
            change,
            identity,
            gitops,
            settings,
            ("approve", DECIDABLE, ChangeStatus.MERGED),
            lambda claim: _gate_then_merge(
                session, change, claim, identity, gitops, settings, override
            ),
        )
    except MergeConflictError as exc:  # the claim is released; git was not touched
        raise _conflicted(session, change, identity, exc) from exc
    except BranchMovedError as exc:  # the claim is released; git was not touched
        raise DecisionError(f"not approved: {exc}; run the checks on it again") from exc
    if claimed is None:
        return change
    token, merge_sha = claimed
    _record_merge(session, change, token, merge_sha, identity.user_ref, gitops, settings)
    return change


def _carry_out(
    session: Session,
    change: Change,
    identity: Identity,
    gitops: GitOpsRepo,
    settings: Settings,
    decision: tuple[str, Collection[ChangeStatus], ChangeStatus],
    git_step: Callable[[DecisionClaim], _T],
) -> tuple[str, _T] | None:
    """Claim the decision, settle one a crash interrupted, then run its git step.

    ``decision`` is ``(action, statuses it may start from, status it ends in)``. Returns
    the claim's token and the step's result; None when the change already ended as this
    decision would end it (a lost race or an interrupted twin); raises
    :class:`DecisionError` when it ended otherwise. The step runs with the claim held (it
    may refuse with :class:`DecisionError` before touching git); a failed step gives the
    claim up.
    """
    action, statuses, ending = decision
    done = {"approve": "approved", "reject": "rejected"}[action]
    claim = claim_decision(session, change, action, identity.user_ref, statuses)
    if claim is None:
        _outcome_for_loser(change, ending, done)
        return None
    try:
        if claim.interrupted is not None and _settle_interrupted(
            session, change, claim, gitops, settings
        ):
            _outcome_for_loser(change, ending, done)
            return None
        return claim.token, git_step(claim)
    except BaseException as exc:
        release_decision(session, change.id, claim.token, unsure=not _git_untouched(exc))
        raise


def _conflicted(
    session: Session, change: Change, identity: Identity, conflict: MergeConflictError
) -> DecisionError:
    """Mark a change whose merge conflicts with main ``conflicted`` and say why (409).

    The merge is computed on the newest main; lines main changed since the change was
    proposed make it conflict. It is never merged silently: it stays conflicted, shown,
    until it is rejected (and proposed again on the new main).
    """
    paths = ", ".join(conflict.paths) or "the tree"
    detail = f"merging {change.branch} into main conflicts in {paths}"
    event = (identity.user_ref, "conflicted", detail)
    decide_without_git(session, change, ChangeStatus.CONFLICTED, DECIDABLE, event, error=detail)
    return DecisionError(
        f"not merged: main changed the same lines since this change was proposed ({detail}); "
        "reject it and propose the edit again on the new main"
    )


def _git_untouched(error: BaseException) -> bool:
    """Tell whether a failed decision surely left git as it was (else git is asked later)."""
    return isinstance(error, DecisionError | MergeConflictError | RefNotFoundError)


def _checked_override(override: Override, identity: Identity, settings: Settings) -> Override:
    """Refuse an override by a non-admin (403) or without a fit reason or checks (422)."""
    if not identity.is_admin(settings.admin_group):
        raise DecisionError(
            f"only members of {settings.admin_group} may approve over failing checks", 403
        )
    reason = clean_reason(override.reason)
    if (problem := reason_problem(reason)) is not None:
        raise DecisionError(f"the reason {problem}", 422, field=REASON_FIELD)
    if not override.checks:
        raise DecisionError(
            "name the failing checks this approval goes over, as the refusal lists them",
            422,
            field=CHECKS_FIELD,
        )
    return Override(reason, tuple(dict.fromkeys(override.checks)))


def _gate_then_merge(
    session: Session,
    change: Change,
    claim: DecisionClaim,
    identity: Identity,
    gitops: GitOpsRepo,
    settings: Settings,
    override: Override | None,
) -> str:
    """Read the checks under the claim; refuse, or note the override and merge.

    Only here, with the claim held, do the checks decide: whatever they said when the
    page was shown, or when ``approve`` was called, is no longer trusted.
    """
    gate = gate_of(checks_of(session, change.id))
    if gate.waiting:
        raise DecisionError(f"not approved: {gate.why_waiting()}", unfinished=gate.unfinished)
    applied: Override | None = None
    if gate.blocking:
        if override is None:
            why = gate.why_blocked(settings.admin_group)
            raise DecisionError(f"not approved: {why}", blocking=gate.blocking)
        if set(override.checks) != set(gate.blocking):
            raise DecisionError(
                "not approved over failing checks: the checks changed since they were read. "
                f"Now failing or unable to run: {', '.join(gate.blocking)}; the reason was "
                f"given for: {', '.join(override.checks)}. Reload the change and read them again",
                blocking=gate.blocking,
            )
        applied = Override(override.reason, gate.blocking)
    reason, checks = (applied.reason, list(applied.checks)) if applied else (None, None)
    if not note_override(session, change, claim.token, reason, checks):
        raise DecisionError(_refusal(change, "approved"))
    return _merge(change, identity.user_ref, identity.display_name, gitops, settings, applied)


def _merge(
    change: Change,
    approver: str,
    name: str,
    gitops: GitOpsRepo,
    settings: Settings,
    override: Override | None = None,
) -> str:
    # The override's paragraph comes before the trailers, which stay the last paragraph.
    section = commit_section(override, approver) if override else ""
    message = (
        f"Merge {change.branch}: {change.title}\n\n{section}"
        f"Change: {change.id}\nRequested-by: {change.requester_ref}\n"
        f"Approved-by: {approver}\n"
    )
    author = (name, settings.git_author_email)
    return gitops.merge(change.branch, message, author, expected_head=change.commit_sha)


def _record_merge(
    session: Session,
    change: Change,
    token: str,
    merge_sha: str,
    approver: str,
    gitops: GitOpsRepo,
    settings: Settings,
    note: str = "",
) -> None:
    event = (approver, "approved", f"merged as {merge_sha}{note}")
    values = {"merge_sha": merge_sha, "approved_by": approver}
    if change.override_reason is not None:  # noted under this claim, or the interrupted one
        over = ", ".join(change.override_checks or [])
        detail = f"approved over failing checks {over}: {change.override_reason}"
        audit(session, change.id, approver, OVERRIDE_ACTION, detail)  # settled with the merge
    if not settle_decision(session, change, token, ChangeStatus.MERGED, event, **values):
        raise DecisionError(_refusal(change, "approved"))
    location = f"git+{gitops.public_url}#{gitops.main}:services/{change.service}/catalog-info.yaml"
    report = import_locations(session, [location], settings, git=GitOpsFileReader(gitops))
    if report.problems:
        detail = "; ".join(str(problem) for problem in report.problems)
        audit(session, change.id, approver, "catalog", detail)
        session.commit()


def _settle_interrupted(
    session: Session, change: Change, claim: DecisionClaim, gitops: GitOpsRepo, settings: Settings
) -> bool:
    """Finish a decision whose process died after git acted; True when the change is settled.

    git says what happened: a merged branch was approved, a deleted one rejected.
    Otherwise the interrupted decision never reached git and the new one goes ahead.
    """
    assert claim.interrupted is not None
    action, actor = claim.interrupted
    note = " (recorded after the approval was interrupted)"
    gitops.refresh()
    exists = gitops.branch_exists(change.branch)
    if action == "approve" and exists and not gitops.changed_files(change.branch):
        merge_sha = _merge(change, actor, actor, gitops, settings)  # returns the existing merge
        _record_merge(session, change, claim.token, merge_sha, actor, gitops, settings, note)
        return True
    if action == "reject" and not exists:
        event = (actor, "rejected", "branch deleted (recorded after the rejection was interrupted)")
        cleared = {"override_reason": None, "override_checks": None}
        if not settle_decision(
            session, change, claim.token, ChangeStatus.REJECTED, event, **cleared
        ):
            raise DecisionError(_refusal(change, "decided"))
        return True
    return False


def _outcome_for_loser(change: Change, idempotent: ChangeStatus, done: str) -> Change:
    """Return ``change`` when it already ended as this decision would end it, else refuse."""
    if change.status is idempotent:
        return change
    raise DecisionError(_refusal(change, done))


def _refusal(change: Change, done: str) -> str:
    """Say why a decision lost: the change moved on, or another decision is under way."""
    if change.decision_token is not None:
        what = {"approve": "an approval", "reject": "a rejection"}.get(change.decision or "")
        since = f" since {change.decision_at:%Y-%m-%d %H:%M:%S}" if change.decision_at else ""
        return (
            f"this change is already being decided: {what or 'a decision'} by "
            f"{change.decision_by}{since} UTC; reload the change to see the outcome"
        )
    return f"a change that is {change.status.value} cannot be {done}"


def request_changes(
    session: Session, change: Change, identity: Identity, settings: Settings, comment: str
) -> Change:
    """Send the change back to its author with a comment (the branch stays)."""
    _check_may(change, identity, settings)
    if not comment.strip():
        raise DecisionError("comment: say what should change", 422, field="comment")
    event = (identity.user_ref, "changes_requested", comment.strip())
    if not decide_without_git(session, change, ChangeStatus.CHANGES_REQUESTED, DECIDABLE, event):
        raise DecisionError(_refusal(change, "sent back"))
    return change


def reject(
    session: Session,
    change: Change,
    identity: Identity,
    gitops: GitOpsRepo,
    settings: Settings,
    comment: str = "",
) -> Change:
    """Close the change and delete its branch (serialised with other decisions, as approve)."""
    if change.status is ChangeStatus.REJECTED:
        return change
    _check_may(change, identity, settings)
    claimed = _carry_out(
        session,
        change,
        identity,
        gitops,
        settings,
        ("reject", REJECTABLE, ChangeStatus.REJECTED),
        lambda _claim: gitops.delete_branch(change.branch),
    )
    if claimed is None:
        return change
    token, _ = claimed
    event = (identity.user_ref, "rejected", comment.strip())
    # An override an interrupted approval left behind went over nothing: it never merged.
    cleared = {"override_reason": None, "override_checks": None}
    if not settle_decision(session, change, token, ChangeStatus.REJECTED, event, **cleared):
        raise DecisionError(_refusal(change, "rejected"))
    return change
