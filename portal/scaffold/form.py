"""The create form as a model: the fields a template's questions become, and back again.

Questions that other questions depend on (through ``when``, templated ``choices`` or a
templated ``default``) re-render the form through htmx when they change, so conditional
questions appear and dependent defaults follow, the way Copier asks them one after
another. A default the person has not edited keeps following the answers before it: the
form remembers what it pre-filled (hidden ``_prefill.`` inputs). Such a derived field that
was not edited never shows an error of its own: what is wrong came from the answer it is
derived from, so the error is told there (:func:`displayed_errors`).

Every field is also checked as it is typed (:mod:`.live_check`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import yaml
from fastapi import Depends, Request
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.catalog.search import EntityQuery, list_entities
from portal.changes.models import Change
from portal.scaffold.answers import copier_variables, validate_answers
from portal.scaffold.questions import (
    Field,
    InvalidAnswerError,
    applies,
    choices_for,
    default_for,
)
from portal.scaffold.registry.offered import OfferedTemplate
from portal.scaffold.request import PORTAL_FIELDS

PREFILL = "_prefill."  # hidden inputs holding the default a field was pre-filled with
RADIO_LIMIT = 5  # more choices than this become a select
_TRUE = frozenset({"true", "on", "1", "yes", "y", "t"})
_ACRONYMS = {"cpu": "CPU", "url": "URL", "id": "ID", "api": "API", "llm": "LLM", "slo": "SLO"}
_PORTAL_HELP = {
    "name": (
        "Lower-case letters, digits and '-', starting with a letter, at most 40 characters. "
        "It names the folder services/<name>, the namespace, the Kubernetes objects and "
        "the catalog component."
    ),
    "owner": "The team that owns the service: its members (or the platform admins) review it.",
    "system": "The catalog System the service belongs to, if any.",
}


@dataclass(frozen=True)
class Option:
    """One choice of a select, radio group or checkbox group."""

    value: str
    label: str
    disabled: str = ""  # why the template does not allow it right now


@dataclass
class FieldView:
    """What the form template needs to draw one question."""

    name: str
    label: str
    widget: str  # text, textarea, number, checkbox, select, radios or checkboxes
    kind: str
    help: str = ""
    placeholder: str = ""
    required: bool = False
    text: str = ""
    selected: frozenset[str] = frozenset()
    options: tuple[Option, ...] = ()
    step: str = ""
    error: str = ""
    when: str = ""
    refresh: bool = False
    follows: bool = False  # when, choices or default depend on other answers
    prefill: str | None = None
    readonly: bool = False


def _label(name: str) -> str:
    words = [_ACRONYMS.get(word, word) for word in name.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _as_text(field: Field | None, value: Any) -> str:
    """Show a typed value the way the form sends it back (``_convert`` reads it again)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if field is not None and field.type == "json" and not isinstance(value, str):
        return json.dumps(value, indent=2)
    if isinstance(value, dict | list):
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).rstrip()
    return str(value)


def _follows_answers(field: Field) -> bool:
    return isinstance(field.default, str) and field.syntax.has_markers(field.default)


def _follows(field: Field) -> bool:
    """Tell whether a question's condition, choices or default are templates of answers."""
    sources: list[Any] = [field.when, field.choices, field.default, field.multiline]
    if isinstance(field.choices, tuple):
        sources += [part for c in field.choices for part in (c.label, c.value, c.disabled)]
    return any(isinstance(source, str) and field.syntax.has_markers(source) for source in sources)


def _dependents(questions: tuple[Field, ...]) -> set[str]:
    """Return the names other questions' ``when``, choices or defaults refer to."""
    sources = []
    for field in questions:
        for source in (field.when, field.choices, field.default if _follows_answers(field) else ""):
            if isinstance(source, str):
                sources.append(source)
    names = {field.name for field in questions} | set(PORTAL_FIELDS)
    return {name for name in names if any(re.search(rf"\b{name}\b", s) for s in sources)}


async def _form_values(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    return {
        key: [value for value in form.getlist(key) if isinstance(value, str)]
        for key in form
        if key != "csrf_token"
    }


FormValues = Annotated[dict[str, list[str]], Depends(_form_values)]


def answers_from_form(template: OfferedTemplate, values: dict[str, list[str]]) -> dict[str, Any]:
    """Turn submitted form values into the raw answers ``request_scaffold`` takes.

    A multiselect is a list (its hidden ``""`` marker makes "none chosen" explicit); other
    fields take their last value (a checkbox sends a hidden ``false`` first). A templated
    default left as pre-filled is dropped, so it is computed from the final answers.
    """
    by_name = {field.name: field for field in template.info.questions}
    raw: dict[str, Any] = {}
    for name in dict.fromkeys([*PORTAL_FIELDS, *by_name]):
        sent = values.get(name)
        if not sent:
            continue
        field = by_name.get(name)
        if field is not None and field.multiselect:
            raw[name] = sent
            continue
        prefilled = values.get(PREFILL + name)
        if field is not None and _follows_answers(field) and prefilled == [sent[-1]]:
            continue
        raw[name] = sent[-1].strip() if name in PORTAL_FIELDS else sent[-1]
    return raw


def raw_from_answers(template: OfferedTemplate, answers: dict[str, Any]) -> dict[str, Any]:
    """Turn stored answers back into what the form sends, to pre-fill it (a revision)."""
    by_name = {field.name: field for field in template.info.questions}
    raw: dict[str, Any] = {}
    for name, value in answers.items():
        field = by_name.get(name)
        if field is not None and field.multiselect and isinstance(value, list):
            raw[name] = [_as_text(field, item) for item in value]
        else:
            raw[name] = _as_text(field, value)
    return raw


def _question_view(
    field: Field, raw: dict[str, Any], default: Any, context: dict[str, Any], refresh: set[str]
) -> FieldView:
    view = FieldView(
        name=field.name,
        label=_label(field.name),
        widget="text",
        kind=field.kind,
        help=field.help.strip(),
        placeholder=field.placeholder,
        required=field.required,
        when="" if field.when is True else str(field.when),
        refresh=field.name in refresh,
        follows=_follows(field),
        prefill=_as_text(field, default) if _follows_answers(field) else None,
    )
    sent = raw.get(field.name)
    if field.choices:
        try:
            view.options = tuple(
                Option(_as_text(field, c.value), str(c.label), c.disabled)
                for c in choices_for(field, context)
            )
        except InvalidAnswerError as exc:
            view.error = str(exc)
    if field.multiselect:
        chosen = sent if isinstance(sent, list) else default or []
        view.widget = "checkboxes"
        view.selected = frozenset(_as_text(field, item) for item in chosen if item != "")
    elif field.choices:
        view.widget = "radios" if len(view.options) <= RADIO_LIMIT else "select"
        view.selected = frozenset({_as_text(field, sent if sent is not None else default)})
    elif field.type == "bool":
        on = str(sent).lower() in _TRUE if sent is not None else bool(default)
        view.widget, view.selected = "checkbox", frozenset({"true"} if on else ())
    else:
        view.text = sent if isinstance(sent, str) else _as_text(field, default)
        if field.type in {"int", "float"}:
            view.widget, view.step = "number", "1" if field.type == "int" else "any"
        elif field.type in {"yaml", "json"} or field.multiline is not False:
            view.widget = "textarea"
    return view


def _question_views(
    template: OfferedTemplate, raw: dict[str, Any], environments: Sequence[str] | None = None
) -> tuple[list[FieldView], dict[str, FieldView]]:
    """Evaluate the questions in order, like Copier: what applies, choices, defaults.

    ``environments``: the GitOps repository's, which the templates offer (None: unknown).
    """
    questions = template.info.questions
    refresh = _dependents(questions)
    asked_names = {field.name for field in questions} | {"name"}
    given = {k: v for k, v in raw.items() if k in asked_names}
    answers, _ = validate_answers(questions, given, environments)
    context: dict[str, Any] = copier_variables(raw.get("name"), environments)
    views: list[FieldView] = []
    asked: dict[str, FieldView] = {}
    for field in questions:
        try:
            shown = applies(field, context)
        except InvalidAnswerError:
            shown = True  # a condition that cannot be evaluated yet: ask rather than hide
        try:
            default = default_for(field, context)
        except InvalidAnswerError:
            default = None
        value = answers.get(field.name, raw.get(field.name, default))
        if value is not None:
            context[field.name] = value
        if shown:
            view = _question_view(field, raw, default, context, refresh)
            asked[field.name] = view
            if field.name not in PORTAL_FIELDS:
                views.append(view)
    for name in PORTAL_FIELDS:  # a portal field is asked by the portal, even if not by Copier
        asked.setdefault(
            name, FieldView(name, _label(name), "text", "str", refresh=name in refresh)
        )
    return views, asked


def field_names(template: OfferedTemplate) -> list[str]:
    """Return every field the form of ``template`` may hold: the portal's, then the questions."""
    return list(dict.fromkeys([*PORTAL_FIELDS, *(q.name for q in template.info.questions)]))


def displayed_errors(
    template: OfferedTemplate,
    raw: dict[str, Any],
    errors: dict[str, str],
    asked: dict[str, FieldView] | None = None,
) -> dict[str, str]:
    """Return ``errors`` the way the form shows them: each on the field the person can fix.

    A derived field (its default a template of other answers) left as pre-filled is not in
    ``raw`` and never shows an error: the first answer its default refers to gets it,
    worded as such, unless one of those answers has an error of its own already (fixing
    that changes the default anyway). An empty owner gets a message naming the choice.
    """
    if asked is None:
        _, asked = _question_views(template, raw)
    shown = dict(errors)
    if "owner" in shown and not raw.get("owner"):  # the parser's message names no field
        shown["owner"] = "choose the team that owns the service"
    names = field_names(template)
    for field in template.info.questions:
        message = shown.get(field.name)
        if message is None or field.name in raw or not _follows_answers(field):
            continue
        default = str(field.default)
        sources = [n for n in names if n != field.name and re.search(rf"\b{n}\b", default)]
        if not sources:
            continue  # a default that refers to no answer: nothing else to fix
        del shown[field.name]
        if not any(source in shown for source in sources):
            view = asked.get(field.name)
            label, value = (view.label, view.prefill) if view else (_label(field.name), None)
            shown[sources[0]] = (
                f"{label} derived from it{f' ({value})' if value else ''}: {message}"
            )
    return shown


def _entities(session: Session, kind: str) -> list[tuple[str, str, str]]:
    """Return ``(form value, label, ref)`` of every entity of ``kind``, by name."""
    found = list_entities(session, EntityQuery(kind=kind, sort="name", limit=500)).items
    return [
        (
            e.name if e.namespace == "default" else f"{e.namespace}/{e.name}",
            e.title or e.name,
            e.ref,
        )
        for e in found
    ]


def form_context(
    request: Request,
    session: Session,
    template: OfferedTemplate,
    raw: dict[str, Any],
    errors: dict[str, str] | None = None,
    revising: Change | None = None,
    environments: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Everything the form page draws; ``revising`` a change keeps its name fixed.

    ``environments``: the GitOps repository's (``ScaffoldRuntime.environments``).
    """
    questions, asked = _question_views(template, raw, environments)
    errors = displayed_errors(template, raw, errors or {}, asked)
    identity: Identity | None = request.state.identity
    groups = _entities(session, "group")
    mine = identity.groups if identity else frozenset()
    portal = {}
    for name in PORTAL_FIELDS:
        view = asked[name]
        view.help = view.help or _PORTAL_HELP[name]
        view.text = str(raw.get(name, "")) if name in raw else view.text
        view.required = name != "system"
        view.follows = False  # the portal asks these plainly, whatever the template says
        portal[name] = view
    if revising is not None:
        portal["name"].text, portal["name"].readonly = revising.service, True
        portal["name"].help = "A revision keeps the name: the branch and folder are named after it."
    for name, view in [*portal.items(), *((q.name, q) for q in questions)]:
        view.error = errors.get(name, view.error)
    shown = {*portal, *(q.name for q in questions)}
    labels = {name: view.label for name, view in [*portal.items(), *asked.items()]}
    return {
        "active": "reviews" if revising else "create",
        "form_url": f"/reviews/{revising.id}/revise"
        if revising
        else f"/create/{template.info.name}",
        # Live checks (as typed) on the create form; a revision is checked when submitted.
        "check_url": "" if revising else f"/create/{template.info.name}/validate",
        "revising": revising,
        "template": template.info,
        "questions": questions,
        "portal": portal,
        "my_groups": [group for group in groups if group[2] in mine],
        "other_groups": [group for group in groups if group[2] not in mine],
        "systems": _entities(session, "system"),
        "summary": [
            (labels.get(name, _label(name)), message, f"field-{name}" if name in shown else "")
            for name, message in errors.items()
        ],
    }
