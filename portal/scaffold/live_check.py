"""Checking one field of the create form while it is typed (htmx posts the whole form).

The answers go through the very validation a submission goes through
(:func:`.request.request_errors`), the errors are placed the way the form places them
(:func:`.form.displayed_errors`: a derived field the person did not edit never shows one),
and only the field asked about is answered. Whether the name is free asks the GitOps
remote, so only a check of the name does; a remote that does not answer is said beside
the field and the submission checks again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.scaffold.form import displayed_errors, field_names
from portal.scaffold.questions import NAME_FIELD
from portal.scaffold.registry.offered import OfferedTemplate, TemplateRegistry
from portal.scaffold.request import request_errors


class UnknownFieldError(ValueError):
    """A live check asked about a field the template's form does not have."""


@dataclass(frozen=True)
class FieldStatus:
    """What the form shows under one field after a live check."""

    name: str
    error: str = ""
    note: str = ""  # only without an error: the name is free, or could not be checked


def check_field(
    session: Session,
    registry: TemplateRegistry,
    template: OfferedTemplate,
    raw: dict[str, Any],
    field: str,
    gitops: Callable[[], GitOpsRepo],
) -> FieldStatus:
    """Validate the form's answers ``raw`` and return the status of ``field`` alone.

    Raises ``UnknownFieldError`` naming ``field`` when the template's form has no such field.
    """
    if field not in field_names(template):
        raise UnknownFieldError(
            f"field: {field!r} is not a field of the form of the template {template.info.name}"
        )
    name, note = template.info.name, ""
    try:
        repo = gitops() if field == NAME_FIELD else None
        errors = request_errors(session, registry, name, raw, repo)
    except GitError as exc:  # the remote is down or hung: the rest can still be checked
        errors = request_errors(session, registry, name, raw, None)
        note = (
            f"Whether the name is free could not be checked now ({exc}); "
            "it is checked again when you create the service."
        )
    shown = displayed_errors(template, raw, errors)
    if field in shown:
        return FieldStatus(field, error=shown[field])
    if field == NAME_FIELD and not note:
        note = f"{raw.get(NAME_FIELD)} is free."
    return FieldStatus(field, note=note)
