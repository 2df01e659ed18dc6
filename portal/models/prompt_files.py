"""Reading a service's prompt versions: ``prompts/<name>/v<N>.yaml`` and ``prompts/labels.yaml``.

The layout the RAG template's services follow (``llmops/prompt-versioning/``): each version
is an immutable file holding ``template`` (placeholders in braces, ``{question}``),
``variables`` (exactly the template's placeholders), ``model_parameters`` and a ``note``;
``labels.yaml`` maps each prompt's labels (``production``, ``staging``) to a version
number. Moving a label is a reviewed change of that one file.

Text in, versions and problems out: the review check reads a change's folder, the Models
page reads GitOps ``main``; both get every problem at once, each naming its file and line.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.yaml_source import YamlDocument, YamlStream

PROMPTS_DIR = "prompts"
LABELS_FILE = f"{PROMPTS_DIR}/labels.yaml"
VERSION_FILE = re.compile(r"^prompts/(?P<name>[^/]+)/v(?P<version>[1-9][0-9]{0,5})\.yaml$")
# What else a prompts folder may hold: notes for the people editing it.
NOTE_FILE = re.compile(r"^prompts/(?:[^/]+/)?[^/]+\.md$")
PROMPT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
LABEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FIELDS = ("template", "variables", "model_parameters", "note")
MAX_FILE_BYTES = 256 * 1024
LAYOUT = "a prompts folder holds labels.yaml and <name>/v<N>.yaml (and notes, *.md)"


@dataclass(frozen=True)
class PromptProblem:
    """One problem of one file, at a line (1 when it concerns the whole file)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.message}"


@dataclass(frozen=True)
class PromptVersion:
    """One version file as read (its fields may be partial when it has problems)."""

    name: str
    version: int
    file: str
    template: str
    variables: tuple[str, ...]
    model_parameters: dict[str, Any]
    note: str
    sha256: str


@dataclass(frozen=True)
class PromptSet:
    """A service's prompts: the version files, the labels that point at versions, the problems.

    ``labels`` keeps only well-formed entries (prompt -> label -> version); a label whose
    version file does not exist is a problem and is kept, so a page can show where it points.
    """

    versions: tuple[PromptVersion, ...] = ()
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: tuple[PromptProblem, ...] = ()

    def names(self) -> list[str]:
        """Return every prompt named by a version file or by labels.yaml, sorted."""
        return sorted({version.name for version in self.versions} | set(self.labels))

    def versions_of(self, name: str) -> list[PromptVersion]:
        """Return the versions of one prompt, oldest first."""
        return sorted((v for v in self.versions if v.name == name), key=lambda v: v.version)

    def labels_at(self, name: str, version: int) -> list[str]:
        """Return the labels of ``name`` that point at ``version``, sorted."""
        return sorted(label for label, at in self.labels.get(name, {}).items() if at == version)


def template_variables(template: str) -> tuple[list[str], str | None]:
    """Return the placeholders of ``template`` in order of first use, or why it is malformed.

    Placeholders are Python format fields (what LangChain's f-string prompts use):
    ``{question}``; ``{{`` and ``}}`` are literal braces. Only plain names are accepted:
    positional (``{}``, ``{0}``), attribute or index fields and conversions are refused.
    """
    found: list[str] = []
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as error:
        return found, f"{error} (write literal braces as {{{{ and }}}})"
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if not VARIABLE_NAME.match(name) or spec or conversion:
            shown = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            return found, f"placeholder {shown} is not a plain name like {{question}}"
        if name not in found:
            found.append(name)
    return found, None


def _document(file: str, data: bytes) -> tuple[YamlDocument | None, list[PromptProblem]]:
    """Read the one YAML document of a file; problems name the file and line."""
    if len(data) > MAX_FILE_BYTES:
        return None, [PromptProblem(file, 1, f"larger than {MAX_FILE_BYTES // 1024} KiB")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, [PromptProblem(file, 1, f"not UTF-8 text ({error.reason})")]
    stream = YamlStream(text)
    documents = list(stream)
    problems = [
        PromptProblem(file, line, f"key {key!r} is given twice") for key, line in stream.duplicates
    ]
    if stream.problem is not None:
        reason = f"not valid YAML: {stream.problem.reason}"
        # At the end of the text the parser stands on the line after the last one.
        line = min(stream.problem.line or 1, len(text.splitlines()) or 1)
        return None, [PromptProblem(file, line, reason)]
    if len(documents) > 1:
        problems.append(PromptProblem(file, documents[1].line, "holds more than one document"))
    return (documents[0] if documents else None), problems


def _json_like(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list):
        return all(_json_like(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_like(v) for k, v in value.items())
    return False


def _first_line_with(text: str, needle: str, default: int) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return default


def _check_variables(
    document: YamlDocument, file: str, text: str, template: str, variables: list[Any]
) -> tuple[list[str], list[PromptProblem]]:
    """Check ``variables`` against the template's placeholders; return the valid names."""
    problems: list[PromptProblem] = []
    declared: dict[str, int] = {}
    for index, item in enumerate(variables):
        line = document.line_of(["variables", index])
        if not isinstance(item, str) or not VARIABLE_NAME.match(item):
            problems.append(
                PromptProblem(file, line, f"variables[{index}]: {item!r} is not a placeholder name")
            )
        elif item in declared:
            problems.append(
                PromptProblem(file, line, f"variables[{index}]: {item} is listed twice")
            )
        else:
            declared[item] = index
    if not template.strip():
        return list(declared), problems
    used, malformed = template_variables(template)
    template_line = document.line_of(["template"])
    if malformed:
        problems.append(PromptProblem(file, template_line, f"template: {malformed}"))
    for name in used:
        if name not in declared:
            line = _first_line_with(text, "{" + name + "}", template_line)
            problems.append(PromptProblem(file, line, f"template: {{{name}}} is not in variables"))
    if not malformed:
        for name, index in declared.items():
            if name not in used:
                line = document.line_of(["variables", index])
                message = f"variables[{index}]: {name} is not a placeholder of the template"
                problems.append(PromptProblem(file, line, message))
    return list(declared), problems


def _read_version(
    file: str, name: str, number: int, data: bytes
) -> tuple[PromptVersion | None, list[PromptProblem]]:
    """Read one version file: its fields, and every problem with its line."""
    document, problems = _document(file, data)
    if document is None or not isinstance(document.data, dict):
        if document is not None or not problems:
            line = document.line if document is not None else 1
            problems.append(PromptProblem(file, line, f"must be a mapping of {', '.join(FIELDS)}"))
        return None, problems
    body: dict[Any, Any] = document.data

    def problem(key: str, message: str) -> None:
        problems.append(PromptProblem(file, document.line_of([key]), f"{key}: {message}"))

    for key in body:
        if key not in FIELDS:
            problem(str(key), f"not a field of a prompt version (fields: {', '.join(FIELDS)})")
    missing = [key for key in FIELDS if key not in body]
    if missing:
        problems.append(PromptProblem(file, document.line, f"missing {', '.join(missing)}"))
    template, note = body.get("template"), body.get("note")
    parameters, variables = body.get("model_parameters"), body.get("variables")
    if "template" in body and (not isinstance(template, str) or not template.strip()):
        problem("template", "must be a non-empty text")
    if "note" in body and (not isinstance(note, str) or not note.strip()):
        problem("note", "must say what this version changes, in a non-empty text")
    parameters_ok = isinstance(parameters, dict) and _json_like(parameters)
    if "model_parameters" in body and not parameters_ok:
        problem("model_parameters", "must map names to numbers, texts, booleans or lists")
    declared: list[str] = []
    if "variables" in body and not isinstance(variables, list):
        problem("variables", "must be a list of the template's placeholder names")
    elif isinstance(variables, list):
        text = data.decode("utf-8", errors="replace")
        template_text = template if isinstance(template, str) else ""
        declared, more = _check_variables(document, file, text, template_text, variables)
        problems += more
    version = PromptVersion(
        name=name,
        version=number,
        file=file,
        template=template if isinstance(template, str) else "",
        variables=tuple(declared),
        model_parameters=parameters if isinstance(parameters, dict) and parameters_ok else {},
        note=note if isinstance(note, str) else "",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return version, problems


def _read_labels(
    data: bytes, versions: Mapping[str, set[int]]
) -> tuple[dict[str, dict[str, int]], list[PromptProblem]]:
    """Read labels.yaml: prompt -> label -> version, each pointing at an existing version."""
    file = LABELS_FILE
    document, problems = _document(file, data)
    if document is None or document.data is None:
        return {}, problems
    if not isinstance(document.data, dict):
        message = "must map each prompt to its labels (qa: {production: 1})"
        return {}, [*problems, PromptProblem(file, document.line, message)]
    labels: dict[str, dict[str, int]] = {}
    for name, entries in document.data.items():
        line = document.line_of([str(name)])
        if not isinstance(name, str) or name not in versions:
            message = f"{name}: no such prompt (no prompts/{name}/v<N>.yaml)"
            problems.append(PromptProblem(file, line, message))
            continue
        if not isinstance(entries, dict):
            message = f"{name}: must map labels to version numbers (production: 1)"
            problems.append(PromptProblem(file, line, message))
            continue
        labels[name] = {}
        for label, version in entries.items():
            where = document.line_of([name, str(label)])
            if not isinstance(label, str) or not LABEL_NAME.match(label):
                message = f"{name}.{label}: a label is a lower-case name like production"
                problems.append(PromptProblem(file, where, message))
            elif isinstance(version, bool) or not isinstance(version, int) or version < 1:
                message = f"{name}.{label}: {version!r} is not a version number (1, 2, ...)"
                problems.append(PromptProblem(file, where, message))
            else:
                labels[name][label] = version
                if version not in versions[name]:
                    message = (
                        f"{name}.{label}: points at version {version}, "
                        f"but prompts/{name}/v{version}.yaml does not exist"
                    )
                    problems.append(PromptProblem(file, where, message))
    return labels, problems


def read_prompt_set(files: Mapping[str, bytes]) -> PromptSet:
    """Read a service's prompts from ``{path: bytes}`` (paths relative to the service folder).

    Paths outside ``prompts/`` are ignored. Every version file and ``labels.yaml`` is read
    on its own, so one broken file hides nothing else; a prompts folder with versions but
    no ``labels.yaml`` is a problem (the service resolves prompts by label).
    """
    versions: list[PromptVersion] = []
    problems: list[PromptProblem] = []
    numbers: dict[str, set[int]] = {}
    for path in sorted(files):
        if not path.startswith(f"{PROMPTS_DIR}/") or path == LABELS_FILE:
            continue
        match = VERSION_FILE.match(path)
        if match is None:
            if not NOTE_FILE.match(path):
                problems.append(PromptProblem(path, 1, f"not a prompt file: {LAYOUT}"))
            continue
        name, number = match["name"], int(match["version"])
        if not PROMPT_NAME.match(name):
            message = f"{name}: a prompt name is lower-case letters, digits, - and _"
            problems.append(PromptProblem(path, 1, message))
            continue
        numbers.setdefault(name, set()).add(number)
        version, more = _read_version(path, name, number, files[path])
        problems += more
        if version is not None:
            versions.append(version)
    labels: dict[str, dict[str, int]] = {}
    if LABELS_FILE in files:
        labels, more = _read_labels(files[LABELS_FILE], numbers)
        problems += more
    elif numbers:
        message = "missing: prompts are served by label (qa: {production: 1})"
        problems.append(PromptProblem(LABELS_FILE, 1, message))
    versions.sort(key=lambda v: (v.name, v.version))
    return PromptSet(tuple(versions), labels, tuple(problems))


def read_prompt_folder(service_dir: Path) -> dict[str, bytes]:
    """Return the regular files under ``service_dir/prompts`` as ``{relative path: bytes}``.

    Symbolic links are left out (followed, they could show any file of the portal's
    machine). A file is read up to one byte past :data:`MAX_FILE_BYTES`, enough to be
    refused as too large without holding all of it.
    """
    found: dict[str, bytes] = {}
    top = service_dir / PROMPTS_DIR
    if not top.is_dir() or top.is_symlink():
        return found
    for folder, _dirs, files in os.walk(top, followlinks=False):
        for name in files:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as stream:
                    data = stream.read(MAX_FILE_BYTES + 1)
                found[path.relative_to(service_dir).as_posix()] = data
    return found
