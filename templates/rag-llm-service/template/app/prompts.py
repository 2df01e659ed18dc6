"""Versioned prompts: ``prompts/<name>/v<N>.yaml`` files and the labels that pick one.

A version file is immutable once merged (a change is a new file and a label moved to it,
both reviewed): ``template`` (a Python format string whose placeholders are filled by the
service), ``variables`` (exactly the template's placeholders), ``model_parameters`` (sent
to the LLM with it) and ``note`` (why this version exists). ``prompts/labels.yaml`` maps
each prompt's labels (``production``, ``staging``) to a version.

:meth:`PromptRegistry.load` reads every file and reports every problem at once, each with
its file, line and field, so a bad prompt change stops the start with the whole list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from langchain_core.prompts import ChatPromptTemplate

# What the service fills in: the numbered passages and the question asked.
SERVICE_VARIABLES = ("context", "question")
FIELDS = ("template", "variables", "model_parameters", "note")
LABELS_FILE = "labels.yaml"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_VERSION_FILE = re.compile(r"^v([1-9][0-9]{0,5})\.yaml$")
# Parameter -> (kind, low, high): what an OpenAI-compatible endpoint takes beside a prompt.
PARAMETERS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "max_tokens": (int, 1, 100_000),
    "presence_penalty": (float, -2.0, 2.0),
    "frequency_penalty": (float, -2.0, 2.0),
    "seed": (int, 0, 2**31 - 1),
}


class PromptError(ValueError):
    """The prompts folder has problems; ``problems`` lists each with its file, line and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class UnknownPromptLabelError(LookupError):
    """A prompt name or label that ``labels.yaml`` does not define; the message lists the known."""


@dataclasses.dataclass(frozen=True)
class PromptVersion:
    """One immutable prompt version, as its file says, with the file's sha256."""

    name: str
    version: int
    template: str
    variables: tuple[str, ...]
    model_parameters: dict[str, Any]
    note: str
    sha256: str

    def chat_prompt(self) -> ChatPromptTemplate:
        """Return the template as a langchain chat prompt (one human message)."""
        return ChatPromptTemplate.from_messages([("human", self.template)])


def placeholders(template: str) -> list[str]:
    """Return the template's placeholders in order; ``ValueError`` names what is wrong."""
    names: list[str] = []
    for _literal, field, _spec, _conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if not field.isidentifier():
            raise ValueError(
                f"{{{field}}} is not a placeholder: use a name such as {{question}}, "
                "and double literal braces ({{ and }})"
            )
        if field not in names:
            names.append(field)
    return names


class _File:
    """A YAML file being checked: its problems carry its name and a line."""

    def __init__(self, display: str, problems: list[str]) -> None:
        self.display = display
        self.problems = problems

    def problem(self, line: int, field: str, why: str) -> None:
        self.problems.append(f"{self.display} line {line}: {field}: {why}")

    def mapping(self, text: str) -> tuple[dict[str, Any], dict[str, int]] | None:
        """Parse a YAML mapping; return it with each key's line, or None (a problem noted)."""
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            reason = getattr(error, "problem", None) or str(error)
            self.problem(line, "yaml", f"not valid YAML ({reason})")
            return None
        if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
            self.problem(1, "file", "must be a mapping of fields")
            return None
        lines: dict[str, int] = {}
        self._key_lines(node, "", lines)
        return data, lines

    def _key_lines(self, node: yaml.MappingNode, prefix: str, lines: dict[str, int]) -> None:
        # Nested keys too ("qa.production"), so a problem points at its own line.
        for key_node, value in node.value:
            key = f"{prefix}{key_node.value}"
            if key in lines:
                self.problem(key_node.start_mark.line + 1, key, "given twice")
            lines[key] = key_node.start_mark.line + 1
            if isinstance(value, yaml.MappingNode):
                self._key_lines(value, f"{key}.", lines)


def _check_parameters(file: _File, value: object, lines: Mapping[str, int]) -> dict[str, Any]:
    line = lines.get("model_parameters", 1)
    if value is None:
        return {}
    if not isinstance(value, dict):
        file.problem(line, "model_parameters", "must be a mapping such as {temperature: 0.1}")
        return {}
    checked: dict[str, Any] = {}
    for key, item in value.items():
        field = f"model_parameters.{key}"
        at = lines.get(field, line)
        if key not in PARAMETERS:
            file.problem(at, field, f"unknown parameter; known: {', '.join(PARAMETERS)}")
            continue
        kind, low, high = PARAMETERS[key]
        number_kinds = (int,) if kind is int else (int, float)
        if isinstance(item, bool) or not isinstance(item, number_kinds):
            file.problem(at, field, f"must be {'an integer' if kind is int else 'a number'}")
        elif not low <= item <= high:
            file.problem(at, field, f"must be between {low:g} and {high:g}, got {item}")
        else:
            checked[key] = kind(item)
    return checked


def _check_version(file: _File, name: str, version: int, raw: bytes) -> PromptVersion | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        file.problem(1, "file", "is not UTF-8 text")
        return None
    parsed = file.mapping(text)
    if parsed is None:
        return None
    data, lines = parsed
    before = len(file.problems)
    for key in data:
        if key not in FIELDS:
            file.problem(lines[str(key)], str(key), f"unknown field; known: {', '.join(FIELDS)}")
    for key in FIELDS:
        if key not in data and key != "model_parameters":
            file.problem(1, key, "missing")
    template, variables, note = data.get("template"), data.get("variables"), data.get("note")
    found: list[str] = []
    if "template" in data:
        if not isinstance(template, str) or not template.strip():
            file.problem(lines["template"], "template", "must be non-empty text")
        else:
            try:
                found = placeholders(template)
            except ValueError as error:
                file.problem(lines["template"], "template", str(error))
    if "note" in data and (not isinstance(note, str) or not note.strip()):
        file.problem(lines["note"], "note", "must say, in a line of text, why this version exists")
    declared: list[str] = []
    if "variables" in data:
        line = lines["variables"]
        if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
            file.problem(line, "variables", "must be a list of names such as [context, question]")
        else:
            declared = variables
            if len(set(declared)) != len(declared):
                file.problem(line, "variables", "lists a name twice")
            unknown = [v for v in declared if v not in SERVICE_VARIABLES]
            if unknown:
                file.problem(
                    line,
                    "variables",
                    f"{', '.join(unknown)}: the service fills only {', '.join(SERVICE_VARIABLES)}",
                )
            if "question" not in declared:
                file.problem(line, "variables", "must include question")
            if isinstance(template, str) and set(found) != set(declared):
                file.problem(
                    line,
                    "variables",
                    f"must be the template's placeholders ({', '.join(found) or 'none'}), "
                    f"got {', '.join(declared) or 'none'}",
                )
    parameters = _check_parameters(file, data.get("model_parameters"), lines)
    if len(file.problems) > before:
        return None
    return PromptVersion(
        name=name,
        version=version,
        template=str(template),
        variables=tuple(declared),
        model_parameters=parameters,
        note=str(note).strip(),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _read_labels(
    file: _File, raw: bytes, versions: Mapping[str, Mapping[int, PromptVersion]]
) -> dict[str, dict[str, int]]:
    parsed = file.mapping(raw.decode("utf-8", errors="replace"))
    if parsed is None:
        return {}
    data, lines = parsed
    labels: dict[str, dict[str, int]] = {}
    for name, mapping in data.items():
        line = lines[str(name)]
        if str(name) not in versions:
            file.problem(line, str(name), "no such prompt (no folder of versions)")
            continue
        if not isinstance(mapping, dict):
            file.problem(line, str(name), "must map labels to versions, e.g. {production: 1}")
            continue
        labels[name] = {}
        for label, version in mapping.items():
            field = f"{name}.{label}"
            line = lines.get(field, lines[str(name)])
            if not isinstance(label, str) or not _NAME.match(label):
                file.problem(line, field, "a label is a lower-case name such as production")
            elif isinstance(version, bool) or not isinstance(version, int):
                file.problem(line, field, f"must be a version number, got {version!r}")
            elif version not in versions[name]:
                known = ", ".join(str(v) for v in sorted(versions[name]))
                file.problem(line, field, f"no version {version} (versions: {known})")
            else:
                labels[name][label] = version
    return labels


class PromptRegistry:
    """Every prompt version of the folder and the labels; read once at start."""

    def __init__(
        self,
        versions: Mapping[str, Mapping[int, PromptVersion]],
        labels: Mapping[str, Mapping[str, int]],
    ) -> None:
        self._versions = {name: dict(found) for name, found in versions.items()}
        self._labels = {name: dict(found) for name, found in labels.items()}

    @classmethod
    def load(cls, folder: Path) -> PromptRegistry:
        """Read ``folder``; raise :class:`PromptError` listing every problem found."""
        problems: list[str] = []
        versions: dict[str, dict[int, PromptVersion]] = {}
        shown = Path(folder.name)
        if not folder.is_dir():
            raise PromptError([f"{shown}: no such folder (PROMPTS_DIR)"])
        for entry in sorted(folder.iterdir()):
            if not entry.is_dir():
                continue
            if not _NAME.match(entry.name):
                problems.append(f"{shown / entry.name}: a prompt name is lower-case, e.g. qa")
                continue
            versions[entry.name] = {}
            for path in sorted(entry.iterdir()):
                display = str(shown / entry.name / path.name)
                matched = _VERSION_FILE.match(path.name)
                if path.suffix == ".md":
                    continue
                if not matched or not path.is_file():
                    problems.append(f"{display}: not a prompt version (name it v<N>.yaml)")
                    continue
                number = int(matched.group(1))
                found = _check_version(
                    _File(display, problems), entry.name, number, path.read_bytes()
                )
                if found is not None:
                    versions[entry.name][number] = found
            if not versions[entry.name] and not any(
                p.startswith(str(shown / entry.name)) for p in problems
            ):
                problems.append(f"{shown / entry.name}: no versions (v1.yaml, v2.yaml, ...)")
        if not versions and not problems:
            problems.append(f"{shown}: no prompts (expected {shown}/<name>/v<N>.yaml)")
        labels: dict[str, dict[str, int]] = {}
        labels_path = folder / LABELS_FILE
        if labels_path.is_file():
            display = str(shown / LABELS_FILE)
            labels = _read_labels(_File(display, problems), labels_path.read_bytes(), versions)
        else:
            problems.append(f"{shown / LABELS_FILE}: missing (it maps labels to versions)")
        if problems:
            raise PromptError(problems)
        return cls(versions, labels)

    def resolve(self, name: str, label: str) -> PromptVersion:
        """Return the version ``label`` points at; :class:`UnknownPromptLabelError` if none."""
        if name not in self._labels:
            known = ", ".join(sorted(self._labels)) or "none"
            raise UnknownPromptLabelError(f"no labels for prompt {name!r} (labelled: {known})")
        version = self._labels[name].get(label)
        if version is None:
            known = ", ".join(sorted(self._labels[name])) or "none"
            raise UnknownPromptLabelError(
                f"unknown label {label!r} of prompt {name!r} (labels: {known})"
            )
        return self._versions[name][version]

    def all(self) -> list[PromptVersion]:
        """Return every version, by name then version."""
        return [
            found[number]
            for name, found in sorted(self._versions.items())
            for number in sorted(found)
        ]

    def labels(self) -> dict[str, dict[str, int]]:
        """Return each prompt's labels and the versions they point at."""
        return {name: dict(found) for name, found in self._labels.items()}
