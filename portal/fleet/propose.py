"""Proposing a template update for one service, a selection, or a template's whole fleet.

Each service gets its own change (kind ``template-update``), created ``rendering``: the
render stage runs ``copier update`` on it in a worker process and pushes its branch
(:mod:`portal.scaffold.updates`), then the usual checks run and the owning team reviews
and approves it. The batch records which change each service got, and why a service got
none (already at that version, an update already open). A platform admin may update any
service; anyone else only services their teams own. Everything is checked before anything
is written: a refusal names the field (``to_ref``, ``services[2]``, ``answers.name``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlmodel import Session

from portal.api_errors import RefusedError
from portal.auth.identity import Identity
from portal.auth.tokens import service_owner
from portal.changes.models import UPDATE_KIND, Change, ChangeStatus, new_change_id
from portal.changes.store import audit
from portal.fleet.models import UpdateBatch, new_batch_id
from portal.fleet.releases import resolve_commit
from portal.fleet.scan import RecordedService, read_fleet
from portal.fleet.status import open_updates
from portal.integrations.copier_update import target_problem
from portal.integrations.git import GitError
from portal.integrations.git_args import GitArgumentError
from portal.integrations.gitops import GitOpsRepo
from portal.scaffold.registry.offered import OfferedTemplate

MAX_SERVICES = 500  # one batch; a larger fleet is updated in several


class UpdateRefusedError(RefusedError):
    """A refused update request: 403, 404 (``message``) or 422 (per field); nothing written."""


def _target_problem(template: OfferedTemplate, to_ref: str) -> str | None:
    """Say why ``to_ref`` is no version to update to (missing, hostile, with tasks), or None."""
    try:
        resolve_commit(Path(template.src), to_ref, "version")
    except GitArgumentError as exc:
        return str(exc)
    except GitError:
        return f"{template.info.name} has no version {to_ref}"
    return target_problem(template.src, to_ref, template.info.name)


def _answers_problems(answers: Mapping[str, Any]) -> dict[str, str]:
    problems: dict[str, str] = {}
    for key, value in answers.items():
        if key.startswith("_"):
            problems[f"answers.{key}"] = "Copier's own settings cannot be answered"
        elif isinstance(value, dict):
            problems[f"answers.{key}"] = "an answer is a value or a list, not a mapping"
    return problems


def _chosen(
    fleet: Sequence[RecordedService], services: Sequence[str] | None
) -> tuple[list[RecordedService], dict[str, str]]:
    """Return the services asked for (all when None) and the names that are not in the fleet."""
    by_name = {entry.service: entry for entry in fleet}
    if services is None:
        return list(fleet), {}
    problems = {
        f"services[{index}]": f"{name!r} is not a service this template generated"
        for index, name in enumerate(services)
        if name not in by_name
    }
    unique = list(dict.fromkeys(services))
    return [by_name[name] for name in unique if name in by_name], problems


def _may_update(identity: Identity, owner: str | None, admin_group: str) -> bool:
    if identity.is_admin(admin_group):
        return True
    return identity.token is None and owner is not None and identity.is_member(owner)


def propose_updates(
    session: Session,
    repo: GitOpsRepo,
    template: OfferedTemplate,
    identity: Identity,
    admin_group: str,
    *,
    to_ref: str,
    services: Sequence[str] | None = None,
    answers: Mapping[str, Any] | None = None,
) -> UpdateBatch:
    """Create one update change per service (``rendering``) and the batch holding them."""
    given = dict(answers or {})
    errors = _answers_problems(given)
    if (problem := _target_problem(template, to_ref)) is not None:
        errors["to_ref"] = problem
    if services is not None and not services:
        errors["services"] = "name at least one service, or leave it out for the whole fleet"
    if services is not None and len(services) > MAX_SERVICES:
        errors["services"] = f"at most {MAX_SERVICES} services at once"
    fleet = read_fleet(repo).of(template)
    chosen, unknown = _chosen(fleet, services)
    errors.update(unknown)
    if not errors and not chosen:
        errors["services"] = f"no service on main was generated from {template.info.name}"
    if errors:
        raise UpdateRefusedError("the update was refused", errors=errors)
    owners = {entry.service: service_owner(session, entry.service) for entry in chosen}
    if denied := [
        name for name, owner in owners.items() if not _may_update(identity, owner, admin_group)
    ]:
        raise UpdateRefusedError(
            f"only the owning teams or {admin_group} can update {', '.join(denied)}", 403
        )
    already = open_updates(session, template.info.name)
    batch = UpdateBatch(
        id=new_batch_id(),
        template=template.info.name,
        to_ref=to_ref,
        requested_by=identity.user_ref,
        answers=given,
        changes={},
        skipped={},
    )
    for entry in chosen:
        if entry.commit == to_ref:
            batch.skipped[entry.service] = f"already at {to_ref}"
        elif already.get(entry.service):
            batch.skipped[entry.service] = f"an update is already open: {already[entry.service][0]}"
        else:
            change = _change(entry, template, identity, owners[entry.service], batch, given)
            session.add(change)
            session.flush()  # the change's row first: its audit event refers to it
            audit(session, change.id, identity.user_ref, "proposed", change.title)
            batch.changes[entry.service] = change.id
    session.add(batch)
    session.commit()
    session.refresh(batch)
    return batch


def _change(
    entry: RecordedService,
    template: OfferedTemplate,
    identity: Identity,
    owner: str | None,
    batch: UpdateBatch,
    given: dict[str, Any],
) -> Change:
    change_id = new_change_id()
    recorded_owner = entry.answers.get("owner")
    environments = entry.answers.get("environments")
    return Change(
        id=change_id,
        kind=UPDATE_KIND,
        title=f"Update {entry.service} to {template.info.name} {batch.to_ref}",
        template=template.info.name,
        template_version=batch.to_ref[:60],
        service=entry.service,
        owner_ref=owner or (f"group:default/{recorded_owner}" if recorded_owner else ""),
        requester_ref=identity.user_ref,
        answers={
            "to_ref": batch.to_ref,
            "from_ref": entry.commit,
            "answers": given,
            "batch": batch.id,
            **({"environments": environments} if isinstance(environments, list) else {}),
        },
        branch=f"update/{entry.service}/{change_id}",
        status=ChangeStatus.RENDERING,
        proposed_by=identity.user_ref,
        reason=f"{template.info.name} {entry.commit or 'unknown'} -> {batch.to_ref}"
        f" (batch {batch.id})",
    )
