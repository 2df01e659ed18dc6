"""Copier questions (``copier.yml``) as typed form fields (their answers: :mod:`.answers`).

Copier's semantics where they change what is rendered: value types (inferred from the
default when ``type`` is absent), ``choices`` (list, pairs, mapping or a Jinja string of
YAML), ``multiselect``, Jinja in ``default``/``when``/``choices``, and ``validator``
templates rendering an error message or nothing, all evaluated in a sandbox whose only
context is the answers. The portal's rules come on top (see :mod:`.answers`): the service
name is a DNS-1123 label of at most 40 characters that nothing else uses; every text is
UTF-8 without control characters; no answer holds template syntax; single-line questions
get one line; Kubernetes quantities and replica counts stay in sane bounds; ``secret``
questions are refused (answers are committed to the GitOps repository, where no secret may
ever be written).

Copier has no quantity type, so a question's name says what it holds: a ``cpu`` part
(``cpu_request``, ``worker_cpu_limit``) a CPU quantity, a ``memory`` or ``mem`` part a memory
quantity, a ``replicas`` part a replica count (see :func:`quantity_kind`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from portal.integrations.copier_jinja import (
    DEFAULT_SYNTAX,
    JinjaSyntax,
    TemplateCodeError,
    check_syntax,
    evaluate,
)

VALUE_TYPES = frozenset({"str", "int", "float", "bool", "json", "yaml", "path"})
QUESTION_KEYS = frozenset(
    {"type", "help", "default", "choices", "multiselect", "placeholder", "secret"}
    | {"validator", "when", "multiline", "qmark", "ask"}
)
NAME_FIELD = "name"
NAME_MAX_LENGTH = 40
PUBLIC_ANSWERS_ONLY = (
    "secret questions are not supported: answers are committed to the GitOps repository, "
    "where no secret may ever be written"
)
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
INT_BOUND = 2**63  # Kubernetes and YAML readers hold whole numbers in 64 bits
MAX_CPU_CORES = 64
MAX_MEMORY = "512Gi"
MAX_REPLICAS = 100
_RESOURCE_PARTS = {"cpu": "cpu", "memory": "memory", "mem": "memory"}
_AMOUNT_PARTS = frozenset({"request", "requests", "limit", "limits"})
_TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})
_FALSE = frozenset({"n", "no", "f", "false", "off", "0", ""})


class QuestionError(ValueError):
    """A question in ``copier.yml`` the portal cannot turn into a form field."""


class InvalidAnswerError(ValueError):
    """An answer that does not fit its field; the message is shown on the field."""


@dataclasses.dataclass(frozen=True)
class Choice:
    """One option of a choice question; ``label`` and ``value`` may still hold Jinja."""

    label: Any
    value: Any
    disabled: str = ""  # a Jinja template in copier.yml; once rendered, why it is disabled


@dataclasses.dataclass(frozen=True)
class Field:
    """One Copier question as a typed form field."""

    name: str
    type: str
    help: str = ""
    default: Any = None
    has_default: bool = False
    placeholder: str = ""
    choices: tuple[Choice, ...] | str = ()
    multiselect: bool = False
    secret: bool = False
    when: bool | str = True
    validator: str = ""
    multiline: bool | str = False
    syntax: JinjaSyntax = DEFAULT_SYNTAX

    @property
    def kind(self) -> str:
        """Name the form widget: ``multiselect``, ``choice`` or the value type."""
        if self.multiselect:
            return "multiselect"
        return "choice" if self.choices else self.type

    @property
    def required(self) -> bool:
        """Tell whether an answer is needed (the template gives no default)."""
        return not self.has_default


def quantity_kind(name: str) -> str | None:
    """Return ``cpu``, ``memory`` or ``replicas`` for a question named for one, else None.

    A resource part (``cpu``, ``memory``, ``mem``) counts when it ends the name or a
    ``request``/``limit`` part follows it (``cpu_request``, ``worker_mem``, not
    ``cpu_architecture``); a ``replicas`` part counts anywhere (``min_replicas``).
    """
    parts = name.lower().split("_")
    if "replicas" in parts:
        return "replicas"
    for index, part in enumerate(parts):
        following = parts[index + 1 :]
        if part in _RESOURCE_PARTS and (not following or following[0] in _AMOUNT_PARTS):
            return _RESOURCE_PARTS[part]
    return None


def render_expression(field: Field, source: str, context: Mapping[str, Any], what: str) -> str:
    """Render one of the template's expressions; a failure is the answer's error."""
    try:
        return evaluate(source, context, field.syntax)
    except TemplateCodeError as exc:
        raise InvalidAnswerError(f"the template's {what} failed: {exc}") from exc


def render_value(field: Field, value: Any, context: Mapping[str, Any], what: str) -> Any:
    """Render Jinja inside a default or choice value (and lists of them)."""
    if isinstance(value, str) and field.syntax.has_markers(value):
        return render_expression(field, value, context, what)
    if isinstance(value, list):
        return [render_value(field, item, context, what) for item in value]
    return value


def parse_questions(config: Mapping[str, Any], source: str = "copier.yml") -> list[Field]:
    """Turn a parsed ``copier.yml`` into fields; ``source`` names the file in errors."""
    try:
        syntax = JinjaSyntax.from_envops(config.get("_envops") or {})
    except (ValueError, AttributeError) as exc:
        raise QuestionError(f"{source}: field '_envops': {exc}") from exc
    fields = []
    for name, spec in config.items():
        if isinstance(name, str) and name.startswith("_"):
            continue
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise QuestionError(f"{source}: question {name!r}: name must be an identifier")
        fields.append(_parse_one(name, spec, f"{source}: question {name!r}", syntax))
    return fields


def _parse_one(name: str, spec: Any, where: str, syntax: JinjaSyntax) -> Field:
    spec = spec if isinstance(spec, dict) else {"default": spec}  # short form `q: default`
    if unknown := sorted(set(spec) - QUESTION_KEYS):
        raise QuestionError(f"{where}: unknown key {unknown[0]!r}")
    has_default = "default" in spec
    type_name = spec.get("type")
    if type_name is None:  # like Copier: the default's Python type, else yaml
        inferred = type(spec["default"]).__name__ if has_default else "yaml"
        type_name = inferred if inferred in VALUE_TYPES else "yaml"
    if type_name not in VALUE_TYPES:
        raise QuestionError(f"{where}: field 'type': {type_name!r} is not a Copier value type")
    multiline = spec.get("multiline", type_name in {"json", "yaml"})
    checks = {"help": str, "placeholder": str, "validator": str, "when": bool | str}
    checks |= {"multiselect": bool, "secret": bool, "multiline": bool | str}
    for key, expected in checks.items():
        if key in spec and not isinstance(spec[key], expected):
            raise QuestionError(f"{where}: field {key!r} has the wrong type")
    for key in ("validator", "when", "default"):
        if isinstance(spec.get(key), str):
            try:
                check_syntax(spec[key], syntax)
            except TemplateCodeError as exc:
                raise QuestionError(f"{where}: field {key!r}: {exc}") from exc
    choices = _parse_choices(spec.get("choices", ()), where)
    if spec.get("multiselect") and not choices:
        raise QuestionError(f"{where}: a multiselect question needs choices")
    plain = ("help", "default", "placeholder", "multiselect", "secret", "when", "validator")
    given = {key: spec[key] for key in plain if key in spec}
    given |= {"has_default": has_default, "choices": choices, "multiline": multiline}
    return Field(name, type_name, **given, syntax=syntax)


def _parse_choices(raw: Any, where: str) -> tuple[Choice, ...] | str:
    if isinstance(raw, str):
        return raw  # a Jinja template rendering a YAML list or mapping
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list | tuple):
        items = [tuple(item) if isinstance(item, list) else (item, item) for item in raw]
    else:
        raise QuestionError(f"{where}: field 'choices' must be a list, a mapping or a template")
    result = []
    for item in items:
        if len(item) != 2:
            raise QuestionError(f"{where}: field 'choices': pairs must be [label, value]")
        label, value = item
        if isinstance(value, dict):  # extended form: {value: ..., validator: ...}
            if "value" not in value:
                raise QuestionError(f"{where}: choice {label!r} needs a 'value'")
            result.append(Choice(label, value["value"], str(value.get("validator", ""))))
        else:
            result.append(Choice(label, value))
    return tuple(result)


def applies(field: Field, context: Mapping[str, Any]) -> bool:
    """Evaluate the field's ``when`` with the answers so far (Copier's truthiness)."""
    if isinstance(field.when, bool):
        return field.when
    return truthy(render_value(field, field.when, context, "'when'"))


def truthy(value: Any) -> bool:
    """Read a rendered ``when`` the way Copier does."""
    if not isinstance(value, str):
        return bool(value)
    text = value.strip().lower()
    try:
        return bool(float(text))
    except ValueError:
        return text not in _FALSE | {"~", "null", "none"}


def choices_for(field: Field, context: Mapping[str, Any]) -> list[Choice]:
    """Render the field's choices for ``context``: labels as text, values typed."""
    choices = field.choices
    if isinstance(choices, str):
        rendered = _load_yaml(render_expression(field, choices, context, "choices"), "choices")
        try:
            parsed = _parse_choices(rendered, field.name)
        except QuestionError as exc:
            raise InvalidAnswerError(f"the template's choices are invalid: {exc}") from exc
        choices = parsed if isinstance(parsed, tuple) else ()
    result = []
    for choice in choices:
        value = convert(field, render_value(field, choice.value, context, "choices"))
        disabled = render_expression(field, choice.disabled, context, "choice validator").strip()
        label = str(render_value(field, choice.label, context, "choices"))
        result.append(Choice(label, value, disabled))
    return result


def default_for(field: Field, context: Mapping[str, Any]) -> Any:
    """Render the field's default with the answers so far and cast it to its type."""
    if not field.has_default:
        return None
    value = render_value(field, field.default, context, "default")
    if field.multiselect:
        items = value if isinstance(value, list) else _load_yaml(str(value), "default")
        return [convert(field, item) for item in items or []]
    return convert(field, value)


def initial_values(fields: Sequence[Field]) -> dict[str, Any]:
    """Return the defaults of a blank form, each rendered with the defaults before it.

    Questions without a default (or whose default fails to render) are left out.
    """
    context: dict[str, Any] = {}
    for field in fields:
        if field.has_default:
            with contextlib.suppress(InvalidAnswerError):
                context[field.name] = default_for(field, context)
    return context


def _load_yaml(text: str, what: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise InvalidAnswerError(f"invalid {what}: {getattr(exc, 'problem', '')}{line}") from exc


def convert(field: Field, value: Any) -> Any:
    """Cast one submitted value (form text or a JSON-native value) to the field's type."""
    kind, text = field.type, value.strip() if isinstance(value, str) else None
    if kind in {"str", "path"}:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidAnswerError("must be text")
        return str(value)
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            whole = value
        elif text is not None and _INT_RE.fullmatch(text):
            # Python refuses to parse more than 4300 digits; no 64-bit number needs 20.
            digits = text.lstrip("+-").lstrip("0")
            whole = int(text) if len(digits) <= 19 else INT_BOUND
        else:
            raise InvalidAnswerError("must be a whole number")
        if not -INT_BOUND <= whole < INT_BOUND:
            raise InvalidAnswerError("must be a whole number that fits in 64 bits")
        return whole
    if kind == "float":
        number = math.nan
        if isinstance(value, int | float) and not isinstance(value, bool):
            with contextlib.suppress(OverflowError):
                number = float(value)
        elif text is not None:
            with contextlib.suppress(ValueError):
                number = float(text)
        if not math.isfinite(number):
            raise InvalidAnswerError("must be a number")
        return number
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise InvalidAnswerError("must be true or false")
    if not isinstance(value, str):
        return value  # json and yaml questions take structured values as they are
    if kind == "json":
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidAnswerError(f"invalid JSON: {exc.msg} (line {exc.lineno})") from exc
    return _load_yaml(value, "YAML")


def pick(field: Field, value: Any, choices: list[Choice]) -> Any:
    """Return the choice value matching a submitted answer, or raise the field's error."""
    converted = convert(field, value)
    for choice in choices:
        if choice.value == converted and type(choice.value) is type(converted):
            if choice.disabled:
                raise InvalidAnswerError(choice.disabled)
            return choice.value
    allowed = ", ".join(str(choice.value) for choice in choices if not choice.disabled)
    raise InvalidAnswerError(f"{value!r} is not one of the choices: {allowed}")
