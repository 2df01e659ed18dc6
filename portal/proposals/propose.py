"""Turning a proposal (edits to an existing service) into a change ready for its checks.

Everything a proposal needs is checked before anything is written: the service (a catalog
Component with an owner, a folder on ``main``), who proposes (a token scoped to the
service, or a member of the owning team or a platform admin), the title, reason and
evidence, and every edit applied to the current ``main``. The edits are then committed as
one commit on that ``main`` commit and pushed as ``change/<service>/<id>``; the change is
stored as ``checking``, so the check stage takes it from there (there is nothing to render).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from portal.api_errors import RefusedError
from portal.auth.identity import Identity
from portal.auth.tokens import SERVICE_NAME, service_owner
from portal.changes.edits import Edit, EditError, apply_edits
from portal.changes.environments import deployable_environments
from portal.changes.models import EDIT_KIND, Change, ChangeStatus, new_change_id
from portal.changes.store import audit, step_record
from portal.config import Settings
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.proposals.evidence import EvidenceItem, checked_evidence
from portal.scaffold.answers import text_problem
from portal.scaffold.slo_rules import with_regenerated_rules

MAX_TITLE = 200
MAX_REASON = 5000


class ProposalRefusedError(RefusedError):
    """A refused proposal: 403 (``message``) or 422 (one message per field); nothing written."""


@dataclass(frozen=True)
class Proposal:
    """What a proposer sends: the service, why, the evidence and the edits.

    ``answers`` are stored with the change's own (a model promotion records
    ``answers["model"]``, see :mod:`portal.models.promote`); the environments are always
    computed here, never taken from them.
    """

    service: str
    title: str
    reason: str
    edits: Sequence[Edit]
    evidence: Sequence[EvidenceItem] = ()
    answers: Mapping[str, Any] = field(default_factory=dict)


def branch_for(service: str, change_id: str) -> str:
    """Return the branch an edit change of ``service`` is committed on."""
    return f"change/{service}/{change_id}"


def _text_errors(proposal: Proposal) -> dict[str, str]:
    errors: dict[str, str] = {}
    title, reason = proposal.title.strip(), proposal.reason.strip()
    if (problem := text_problem(title, multiline=False)) is not None:
        errors["title"] = problem
    elif not 0 < len(title) <= MAX_TITLE:
        errors["title"] = f"say what the change does in 1 to {MAX_TITLE} characters"
    if (problem := text_problem(reason)) is not None:
        errors["reason"] = problem
    elif not 0 < len(reason) <= MAX_REASON:
        errors["reason"] = f"say why, in 1 to {MAX_REASON:,} characters"
    if not proposal.edits:
        errors["edits"] = "propose at least one edit"
    return errors


def _refuse_proposer(identity: Identity, service: str, owner: str | None, admin_group: str) -> None:
    """Raise 403 unless ``identity`` may propose changes to ``service``."""
    grant = identity.token
    if grant is not None:
        if not grant.may_propose(service):
            scope = ", ".join(sorted(grant.services)) or "no service"
            raise ProposalRefusedError(
                f"API token {grant.token_id} ({grant.name}) may not propose changes to "
                f"{service}: it is scoped to changes:propose for {scope}",
                403,
            )
        return
    if owner is not None and not (identity.is_member(owner) or identity.is_admin(admin_group)):
        raise ProposalRefusedError(
            f"only members of {owner} (which owns {service}) or {admin_group} can propose "
            f"changes to {service}",
            403,
        )


def _environments(
    repo: GitOpsRepo, base: str, service: str, written: Sequence[str], settings: Settings
) -> list[str]:
    """Return the repository's environments the service has an overlay for, after the edits."""
    prefix = f"services/{service}/deploy/overlays/"
    files = [*repo.list_files(base, prefix), *written]
    present = {path[len(prefix) :].split("/")[0] for path in files if path.startswith(prefix)}
    environments = deployable_environments(repo, base, settings.environments)
    return [env for env in environments if env in present]


def refuse_proposer(
    session: Session, identity: Identity, service: str, settings: Settings
) -> str | None:
    """Raise 403 unless ``identity`` may propose changes to ``service``; return its owner.

    For callers that do slower work before :func:`propose` (which checks again): a
    proposer who may not propose is told so first.
    """
    _refuse_proposer(identity, service, None, settings.admin_group)
    owner = service_owner(session, service)
    _refuse_proposer(identity, service, owner, settings.admin_group)
    return owner


def propose(
    session: Session,
    repo: GitOpsRepo,
    settings: Settings,
    identity: Identity,
    proposal: Proposal,
) -> Change:
    """Check ``proposal``, commit its edits on a new branch and store the change (``checking``).

    Raises :class:`ProposalRefusedError` (403 or 422, nothing written); errors of the
    GitOps repository (``GitError``) propagate, to be answered 503.
    """
    service = proposal.service
    if not SERVICE_NAME.fullmatch(service):
        raise ProposalRefusedError(
            "the proposal was refused", errors={"service": f"{service!r} is not a service name"}
        )
    _refuse_proposer(identity, service, None, settings.admin_group)  # a token's scope first
    owner = service_owner(session, service)
    errors = _text_errors(proposal)
    evidence = checked_evidence(proposal.evidence, errors)
    if owner is None:
        errors["service"] = f"{service}: no catalog Component of this name has an owner"
    if errors:
        raise ProposalRefusedError("the proposal was refused", errors=errors)
    _refuse_proposer(identity, service, owner, settings.admin_group)
    assert owner is not None
    base = repo.refresh()
    try:
        edited = apply_edits(repo, base, service, proposal.edits)
        # An edited slo.yaml ships its regenerated PrometheusRule in the same commit.
        edited = with_regenerated_rules(repo, base, service, proposal.edits, edited)
    except EditError as exc:
        raise ProposalRefusedError("the edits were refused", errors=exc.errors) from None
    grant = identity.token
    change_id = new_change_id()
    proposer = f"{identity.user_ref} ({grant.name})" if grant else identity.user_ref
    change = Change(
        id=change_id,
        kind=EDIT_KIND,
        title=proposal.title.strip(),
        template="",
        service=service,
        owner_ref=owner,
        # The person accountable: the proposer, or the token's creator (so they cannot
        # approve what their token proposed either).
        requester_ref=grant.created_by if grant else identity.user_ref,
        answers={
            **proposal.answers,
            "environments": _environments(repo, base, service, list(edited.files), settings),
        },
        branch=branch_for(service, change_id),
        status=ChangeStatus.CHECKING,
        proposed_by=proposer,
        reason=proposal.reason.strip(),
        evidence=evidence,
    )
    message = _commit_message(change, proposal.edits)
    author = (identity.user_ref, settings.git_author_email)
    change.commit_sha = repo.create_edit_branch(
        change.branch, base, edited.files, message, author, executable=edited.executable
    )
    change.steps = [
        step_record("validate", "done", f"{len(proposal.edits)} edits on main {base[:12]}"),
        step_record("commit", "done", change.commit_sha),
    ]
    files = ", ".join(sorted(edited.files))
    try:
        session.add(change)
        session.flush()  # the change's row first: its audit event refers to it
        audit(session, change.id, identity.user_ref, "proposed", f"{proposer}: {files}")
        session.commit()
    except Exception:
        # A branch no change points at would only confuse: take it back, best effort.
        session.rollback()
        with contextlib.suppress(GitError):
            repo.delete_branch(change.branch)
        raise
    session.refresh(change)
    return change


def _commit_message(change: Change, edits: Sequence[Edit]) -> str:
    listing = "\n".join(f"  {edit.describe()}" for edit in edits)
    return (
        f"Edit {change.service}: {change.title}\n\n{change.reason}\n\n"
        f"Change: {change.id}\nProposed-by: {change.proposed_by}\n"
        f"Requested-by: {change.requester_ref}\nEdits:\n{listing}\n"
    )
