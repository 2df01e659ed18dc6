"""Validating a scaffold request and recording it as a change (no rendering here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlmodel import Session

from portal.auth.identity import Identity
from portal.catalog.refs import RefError, parse_ref
from portal.catalog.store import get_entity
from portal.changes.claims import decide_without_git
from portal.changes.models import REVISABLE, Change, ChangeStatus
from portal.changes.store import audit, open_change_for, set_step, step_record
from portal.clock import utcnow
from portal.integrations.gitops import GitOpsRepo
from portal.review.decide import DecisionError, may_revise
from portal.scaffold.answers import check_service_name, text_problem, validate_answers
from portal.scaffold.names import repository_reason
from portal.scaffold.questions import NAME_FIELD
from portal.scaffold.registry.offered import OfferedTemplate, TemplateRegistry

PORTAL_FIELDS = ("name", "owner", "system")
SCAFFOLD_KIND = "scaffold"
"""The ``kind`` of the changes this package makes (the review pages link its revise page)."""


@dataclass
class ScaffoldRequestError(Exception):
    """Field errors of a refused request; nothing was written."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{name}: {message}" for name, message in self.errors.items())


def branch_for(service: str) -> str:
    """Return the GitOps branch a scaffold of ``service`` is committed on."""
    return f"scaffold/{service}"


def _group_ref(session: Session, owner: str, errors: dict[str, str]) -> str | None:
    if not owner:
        errors["owner"] = "choose the catalog Group that will own the service"
        return None
    try:
        ref = parse_ref(owner, default_kind="group")
    except RefError as exc:
        errors["owner"] = str(exc)
        return None
    if ref.kind.lower() != "group" or get_entity(session, "group", ref.namespace, ref.name) is None:
        errors["owner"] = f"{owner!r} is not a Group in the catalog"
        return None
    return ref.key


def _system_ref(session: Session, system: str, errors: dict[str, str]) -> str | None:
    if not system:
        return None
    try:
        ref = parse_ref(system, default_kind="system")
    except RefError as exc:
        errors["system"] = str(exc)
        return None
    if get_entity(session, ref.kind, ref.namespace, ref.name) is None:
        errors["system"] = f"{system!r} is not a System in the catalog"
        return None
    return ref.key


def _name_is_free(session: Session, gitops: GitOpsRepo, name: str, errors: dict[str, str]) -> None:
    if get_entity(session, "component", "default", name) is not None:
        errors["name"] = f"the catalog already has a component named {name}"
    elif open_change_for(session, name) is not None:
        errors["name"] = f"a change proposing {name} is already open"
    elif gitops.list_files(gitops.refresh(), f"services/{name}"):
        errors["name"] = f"services/{name} already exists in the GitOps repository"
    elif gitops.branch_exists(branch_for(name)):
        errors["name"] = f"branch {branch_for(name)} already exists in the GitOps repository"
    elif (reason := repository_reason(gitops, name)) is not None:
        errors["name"] = reason


@dataclass
class _Validated:
    template: OfferedTemplate
    name: str
    owner_ref: str
    system_ref: str | None
    answers: dict[str, Any]


def _validate(
    session: Session,
    registry: TemplateRegistry,
    template_name: str,
    raw: Mapping[str, Any],
    name_is_free: Callable[[str, dict[str, str]], None],
    environments: Sequence[str] | None,
) -> _Validated:
    """Check a request with a message per field; raise them all, or return the answers."""
    template: OfferedTemplate | None = registry.get(template_name)
    if template is None:
        raise ScaffoldRequestError({"template": f"{template_name!r} is not a registered template"})
    raw = {key: value for key, value in raw.items() if key != "template"}
    # The name has stricter rules of its own; the others may be echoed back in messages.
    errors: dict[str, str] = {
        key: problem
        for key in ("owner", "system")
        if (problem := text_problem(raw.get(key) or "", multiline=False)) is not None
    }
    name = str(raw.get("name", "")).strip()
    if (problem := check_service_name(name)) is not None:
        errors["name"] = problem
    owner = str(raw.get("owner", "")).strip()
    owner_ref = None if "owner" in errors else _group_ref(session, owner, errors)
    system = str(raw.get("system", "") or "").strip()
    system_ref = None if "system" in errors else _system_ref(session, system, errors)
    # The portal's fields answer the template's questions of the same name; otherwise they
    # reach Copier as data only (below), never required of the template. The name goes
    # along anyway: it is Copier's folder name, and the template may validate it too.
    questions = {question.name for question in template.info.questions} | {NAME_FIELD}
    template_raw = {k: v for k, v in raw.items() if k in questions or k not in PORTAL_FIELDS}
    template_raw[NAME_FIELD] = name
    answers, answer_errors = validate_answers(template.info.questions, template_raw, environments)
    for key, message in answer_errors.items():
        errors.setdefault(key, message)
    if "name" not in errors:
        name_is_free(name, errors)
    if errors:
        raise ScaffoldRequestError(errors)
    answers.update({"name": name, "owner": str(raw["owner"]).strip()})
    if system_ref:
        answers["system"] = str(raw["system"]).strip()
    return _Validated(template, name, owner_ref or "", system_ref, answers)


def request_errors(
    session: Session,
    registry: TemplateRegistry,
    template_name: str,
    raw: Mapping[str, Any],
    gitops: GitOpsRepo | None,
    environments: Sequence[str] | None = None,
) -> dict[str, str]:
    """Return the field errors :func:`request_scaffold` would refuse ``raw`` with; write nothing.

    The create form's live checks use it. ``gitops`` None leaves out whether the name is
    free (it asks the GitOps remote, so only a check of the name itself does).
    ``environments``: the repository's (``ScaffoldRuntime.environments``).
    """

    def name_is_free(name: str, errors: dict[str, str]) -> None:
        if gitops is not None:
            _name_is_free(session, gitops, name, errors)

    try:
        _validate(session, registry, template_name, raw, name_is_free, environments)
    except ScaffoldRequestError as exc:
        return dict(exc.errors)
    return {}


def request_scaffold(
    session: Session,
    registry: TemplateRegistry,
    gitops: GitOpsRepo,
    template_name: str,
    raw: Mapping[str, Any],
    requester_ref: str,
    claimed_by: str | None = None,
    environments: Sequence[str] | None = None,
) -> Change:
    """Validate a request and store it as a ``rendering`` change, or raise the field errors.

    Checks, with a message per field: the template is registered; the template's own
    questions and validators; a DNS-1123 service name that is free in the catalog, among
    open changes and in the repository, and neither reserved nor used by the cluster
    folders (:mod:`.names`); an owner that is a catalog Group; a known system.
    ``claimed_by``: the worker that will process it at once (the CLI), so that no serving
    portal's worker takes it up as well. ``environments``: the repository's, which the
    template's choices offer (``ScaffoldRuntime.environments``; None: the template's own list).
    """
    name_is_free = partial(_name_is_free, session, gitops)
    valid = _validate(session, registry, template_name, raw, name_is_free, environments)
    change = Change(
        kind=SCAFFOLD_KIND,
        title=f"Create {valid.name} from {valid.template.info.title}",
        template=valid.template.info.name,
        template_version=valid.template.info.version,
        service=valid.name,
        owner_ref=valid.owner_ref,
        system_ref=valid.system_ref,
        requester_ref=requester_ref,
        answers=valid.answers,
        branch=branch_for(valid.name),
        claimed_by=claimed_by,
        claimed_at=utcnow() if claimed_by else None,
    )
    set_step(change, "validate", "done")
    session.add(change)
    session.flush()
    audit(session, change.id, requester_ref, "requested", f"template {valid.template.info.name}")
    session.commit()
    session.refresh(change)
    return change


def revise_scaffold(
    session: Session,
    registry: TemplateRegistry,
    change: Change,
    raw: Mapping[str, Any],
    identity: Identity,
    admin_group: str,
    environments: Sequence[str] | None = None,
) -> Change:
    """Store new answers for a change sent back (or failed) and queue its next revision.

    The same checks as a new request, except that the name is the change's own and stays:
    the branch, folder and catalog entity are named after it. The job renders the new
    answers and pushes them as one more commit on the same branch; the checks run again
    and the change is back in review. Nothing is written when a field is refused.

    Raises ``DecisionError`` (403) for someone who may not revise it and (409) for a change
    that is not waiting for a revision; ``ScaffoldRequestError`` for refused fields.
    """
    if (reason := may_revise(change, identity, admin_group)) is not None:
        raise DecisionError(reason, 403)
    if change.status not in REVISABLE:
        raise DecisionError(f"a change that is {change.status.value} cannot be revised")

    def same_name(name: str, errors: dict[str, str]) -> None:
        if name != change.service:
            errors["name"] = (
                f"a revision keeps the name {change.service}; reject this change and create "
                "a new one to use another name"
            )

    valid = _validate(session, registry, change.template, raw, same_name, environments)
    # One conditional UPDATE, like a decision: a revision racing an approval or another
    # revision either wins while the change is still revisable and undecided, or writes nothing.
    revision = change.revision + 1
    event = (identity.user_ref, "revised", f"revision {revision}")
    revised = decide_without_git(
        session,
        change,
        ChangeStatus.RENDERING,
        REVISABLE,
        event,
        answers=valid.answers,
        owner_ref=valid.owner_ref,
        system_ref=valid.system_ref,
        template_version=valid.template.info.version,
        revision=revision,
        error=None,
        claimed_by=None,
        claimed_at=None,
        steps=[step_record("validate", "done", f"revision {revision}")],
    )
    if not revised:
        raise DecisionError(f"a change that is {change.status.value} cannot be revised")
    return change
