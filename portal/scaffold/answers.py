"""Server-side validation of the answers to a template's questions.

Types are converted as Copier would, the template's own ``validator`` expressions run in
the sandbox, and the portal's rules come on top: the service name is a DNS-1123 label of
at most 40 characters without path separators or ``..``; no answer holds template syntax;
single-line questions get one line; ``secret`` questions are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from portal.integrations.copier_jinja import DEFAULT_SYNTAX, JinjaSyntax
from portal.scaffold.questions import (
    NAME_FIELD,
    NAME_MAX_LENGTH,
    NAME_RE,
    PUBLIC_ANSWERS_ONLY,
    Field,
    InvalidAnswerError,
    applies,
    choices_for,
    convert,
    default_for,
    pick,
    render_expression,
    render_value,
    truthy,
)


def check_service_name(value: Any) -> str | None:
    """Return why ``value`` is not an acceptable service name, or None when it is."""
    if not isinstance(value, str) or not value:
        return "a name is required"
    if "/" in value or "\\" in value:
        return "must not contain path separators ('/' or '\\')"
    if ".." in value:
        return "must not contain '..'"
    if len(value) > NAME_MAX_LENGTH:
        return f"at most {NAME_MAX_LENGTH} characters (this one has {len(value)})"
    if value != value.lower():
        return "must be lower case"
    if not NAME_RE.match(value):
        return (
            "must be a DNS-1123 label: lower-case letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    return None


def _answer(field: Field, raw: Any, context: Mapping[str, Any]) -> Any:
    choices = choices_for(field, context) if field.choices else []
    if field.multiselect:
        items = raw if isinstance(raw, list) else [raw]
        # An empty string is a form's "nothing selected" marker, not an option.
        picked = [pick(field, item, choices) for item in items if item != ""]
        return [choice.value for choice in choices if choice.value in picked]
    if isinstance(raw, list) and field.type not in {"json", "yaml"}:
        if not raw:
            raise InvalidAnswerError("an answer is required")
        raw = raw[-1]  # a checkbox after its hidden "false" input sends both values
    return pick(field, raw, choices) if choices else convert(field, raw)


def _has_syntax(value: Any, syntax: JinjaSyntax) -> bool:
    if isinstance(value, str):
        return syntax.has_markers(value)
    if isinstance(value, dict):
        return any(_has_syntax(item, syntax) for item in (*value, *value.values()))
    return isinstance(value, list | tuple) and any(_has_syntax(item, syntax) for item in value)


def _portal_rules(field: Field, value: Any, context: Mapping[str, Any]) -> None:
    if field.name == NAME_FIELD and (problem := check_service_name(value)) is not None:
        raise InvalidAnswerError(problem)
    if field.type not in {"str", "path"}:
        return
    multiline = truthy(render_value(field, field.multiline, context, "'multiline'"))
    for text in value if isinstance(value, list) else [value]:
        if not multiline and ("\n" in text or "\r" in text):
            raise InvalidAnswerError("must be a single line")
        parts = text.replace("\\", "/").split("/")
        if field.type == "path" and (text.startswith("/") or ".." in parts):
            raise InvalidAnswerError("must be a relative path without '..'")


def validate_answers(
    fields: Sequence[Field], raw: Mapping[str, object]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Convert and validate submitted answers in question order.

    ``raw`` maps question names to form text, lists of text (a multiselect; a checkbox's
    hidden ``"false"`` followed by ``"true"``) or JSON-native values. A question absent
    from ``raw`` takes its rendered default; one without a default is required. Questions
    whose ``when`` is false are not answered: Copier computes them from their default.

    Returns ``(answers, errors)``: the typed answers of every applicable question, plus
    ``name`` (always validated), and one message per field name for everything wrong.
    """
    by_name = {field.name: field for field in fields}
    errors: dict[str, str] = {}
    for key, value in raw.items():
        syntax = by_name[key].syntax if key in by_name else DEFAULT_SYNTAX
        if key not in by_name and key != NAME_FIELD:
            errors[key] = "not a question of this template"
        elif _has_syntax(value, syntax):
            errors[key] = "must not contain template syntax such as '{{', '{%' or '{#'"
    answers: dict[str, Any] = {}
    context: dict[str, Any] = {}
    for field in fields:
        try:
            if field.secret:
                raise InvalidAnswerError(PUBLIC_ANSWERS_ONLY)
            if not applies(field, context):
                context[field.name] = default_for(field, context)
                continue
            if field.name in errors:
                continue
            if field.name in raw:
                value = _answer(field, raw[field.name], context)
            elif field.has_default:
                value = default_for(field, context)
            else:
                raise InvalidAnswerError("an answer is required")
            _portal_rules(field, value, context)
            if field.validator:
                message = render_expression(
                    field, field.validator, {**context, field.name: value}, "validator"
                )
                if message.strip():
                    raise InvalidAnswerError(message.strip())
        except InvalidAnswerError as exc:
            errors.setdefault(field.name, str(exc))
            continue
        answers[field.name] = context[field.name] = value
    if NAME_FIELD not in by_name and NAME_FIELD not in errors:
        if (problem := check_service_name(raw.get(NAME_FIELD))) is not None:
            errors[NAME_FIELD] = problem
        else:
            answers[NAME_FIELD] = raw[NAME_FIELD]
    return answers, errors
