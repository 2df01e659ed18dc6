"""Server-side validation of the answers to a template's questions.

Types are converted as Copier would, the template's own ``validator`` expressions run in
the sandbox, and the portal's rules come first:

- the service name is a DNS-1123 label of at most 40 characters without path separators
  or ``..``, and not a reserved name (:mod:`.names`);
- every text (also inside ``json``/``yaml`` answers, keys included) is encodable UTF-8 (no
  lone surrogates) without control characters, tabs and line breaks allowed only in
  multi-line questions; single-line answers hold one line of at most 1,000 characters,
  multi-line ones at most 65,536;
- no answer holds template syntax;
- CPU and memory quantities and replica counts (named as :func:`.questions.quantity_kind`
  says) parse as Kubernetes quantities within bounds: at most 64 cores and 512Gi per
  container, at most 100 replicas;
- ``secret`` questions are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from portal.changes.environments import TEMPLATE_VARIABLE as ENVIRONMENTS_VARIABLE
from portal.cost.quantity import parse_quantity
from portal.free_text import control_character, lone_surrogate
from portal.integrations.copier_jinja import DEFAULT_SYNTAX, JinjaSyntax
from portal.scaffold.names import reserved_reason
from portal.scaffold.questions import (
    MAX_CPU_CORES,
    MAX_MEMORY,
    MAX_REPLICAS,
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
    quantity_kind,
    render_expression,
    render_value,
    truthy,
)

MAX_LINE_LENGTH = 1_000
MAX_TEXT_LENGTH = 65_536


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def text_problem(value: Any, *, multiline: bool = True) -> str | None:
    r"""Say what is wrong with the text of an answer (and of any text inside it), or None.

    Text must be encodable UTF-8 (a lone surrogate such as ``"\ud800"`` is not), hold no
    control character, and fit the length limit; ``multiline=False`` also refuses tabs and
    line breaks and applies the single-line limit.
    """
    limit = MAX_TEXT_LENGTH if multiline else MAX_LINE_LENGTH
    for text in _strings(value):
        if len(text) > limit:
            return f"at most {limit:,} characters (this one has {len(text):,})"
        if (where := lone_surrogate(text)) is not None:
            return f"must be valid Unicode text: {where} is a lone surrogate, not a character"
        if (control := control_character(text, multiline=multiline)) is not None:
            where = f"{control[0]} at position {control[1]}"
            if multiline:
                return f"must not contain control characters ({where})"
            return f"must be a single line without control characters ({where})"
    return None


def safe_key(key: str) -> str:
    """Return ``key`` fit to name a field in an error reply (escaped when it is not text)."""
    if text_problem(key, multiline=False) is None:
        return key
    return key[:MAX_LINE_LENGTH].encode("unicode_escape", errors="backslashreplace").decode()


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
    # Only a name that is a DNS label once lower-cased is worth naming back in a message.
    if NAME_RE.fullmatch(value.lower()) and (reason := reserved_reason(value)) is not None:
        return reason
    if value != value.lower():
        return "must be lower case"
    if not NAME_RE.fullmatch(value):
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


_MEMORY_BOUND = parse_quantity(MAX_MEMORY)


def _quantity_rules(field: Field, value: Any) -> None:
    kind = quantity_kind(field.name)
    if kind is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return
    if kind == "replicas":
        if not isinstance(value, int) and not re.fullmatch(r"[0-9]{1,4}", str(value)):
            raise InvalidAnswerError("must be a whole number of replicas")
        if not 0 <= int(value) <= MAX_REPLICAS:
            raise InvalidAnswerError(f"must be between 0 and {MAX_REPLICAS} replicas")
        return
    example = (
        "a CPU quantity such as 500m or 2" if kind == "cpu" else "a memory quantity such as 256Mi"
    )
    try:
        amount = parse_quantity(value)
    except (ValueError, ArithmeticError):
        amount = Decimal(-1)
    if not amount.is_finite() or amount < 0:
        raise InvalidAnswerError(f"must be {example}")
    shown = f" ({value} is more)" if len(str(value)) <= 40 else ""
    if kind == "cpu" and amount > MAX_CPU_CORES:
        raise InvalidAnswerError(f"at most {MAX_CPU_CORES} CPU cores per container{shown}")
    if kind == "memory" and amount > _MEMORY_BOUND:
        raise InvalidAnswerError(f"at most {MAX_MEMORY} of memory per container{shown}")


def _portal_rules(field: Field, value: Any, context: Mapping[str, Any]) -> None:
    if field.name == NAME_FIELD and (problem := check_service_name(value)) is not None:
        raise InvalidAnswerError(problem)
    if field.type in {"str", "path"}:
        multiline = truthy(render_value(field, field.multiline, context, "'multiline'"))
        for text in value if isinstance(value, list) else [value]:
            _text_rules(field, text, multiline)


def _text_rules(field: Field, text: str, multiline: bool) -> None:
    if not multiline and ("\n" in text or "\r" in text):
        raise InvalidAnswerError("must be a single line")
    if (problem := text_problem(text, multiline=multiline)) is not None:
        raise InvalidAnswerError(problem)
    parts = text.replace("\\", "/").split("/")
    if field.type == "path" and (text.startswith("/") or ".." in parts):
        raise InvalidAnswerError("must be a relative path without '..'")


def copier_variables(name: object, environments: Sequence[str] | None = None) -> dict[str, Any]:
    """Return the variables a render of the service ``name`` gets besides the answers.

    Copier renders into ``services/<name>``, so its ``_folder_name`` is the service name;
    templates use it as a default (``package_name: "{{ _folder_name }}"``). The portal adds
    ``portal_environments``, the GitOps repository's environments, when they are known
    (``None``: unknown, and the templates fall back to their own list).
    """
    variables: dict[str, Any] = {"_folder_name": name if isinstance(name, str) else ""}
    if environments is not None:
        variables[ENVIRONMENTS_VARIABLE] = list(environments)
    return variables


def validate_answers(
    fields: Sequence[Field], raw: Mapping[str, object], environments: Sequence[str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Convert and validate submitted answers in question order.

    ``raw`` maps question names to form text, lists of text (a multiselect; a checkbox's
    hidden ``"false"`` followed by ``"true"``) or JSON-native values. A question absent
    from ``raw`` takes its rendered default; one without a default is required. Questions
    whose ``when`` is false are not answered: Copier computes them from their default.

    The template's expressions also see Copier's own variables and the repository's
    ``environments`` (:func:`copier_variables`).

    Returns ``(answers, errors)``: the typed answers of every applicable question, plus
    ``name`` (always validated), and one message per field name for everything wrong.
    """
    by_name = {field.name: field for field in fields}
    errors: dict[str, str] = {}
    for key, value in raw.items():
        syntax = by_name[key].syntax if key in by_name else DEFAULT_SYNTAX
        if key not in by_name and key != NAME_FIELD:
            errors[safe_key(key)] = "not a question of this template"
        elif (problem := text_problem(value)) is not None:
            errors[key] = problem
        elif _has_syntax(value, syntax):
            errors[key] = "must not contain template syntax such as '{{', '{%' or '{#'"
    answers: dict[str, Any] = {}
    context: dict[str, Any] = copier_variables(raw.get(NAME_FIELD), environments)
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
            # After the template's validator, whose message knows the template's own format.
            _quantity_rules(field, value)
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
