"""One template folder of the template registry, read and vetted.

A template is a folder with one Copier configuration (``copier.yml`` or ``copier.yaml``)
and a ``template.yaml`` manifest (title, description, tags, owner, version, and optionally
``deploys``); the manifest is optional for templates registered by git URL. Whether a
template deploys (Flux wiring and manifest checks) is declared by ``deploys``, or without
it detected from each render (:mod:`portal.scaffold.deploys`). Templates that need
Copier's unsafe features (``_tasks``, ``_migrations``, ``_jinja_extensions``), ask
``secret`` questions, use git submodules or carry links that leave the template are
refused: the portal renders with ``unsafe=False``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from portal.scaffold.questions import Field, QuestionError, parse_questions
from portal.yaml_source import YamlStream, line_of

MANIFEST = "template.yaml"
COPIER_FILES = ("copier.yml", "copier.yaml")
MANIFEST_FIELDS = ("title", "description", "tags", "owner", "version", "deploys")
UNSAFE_SETTINGS = {
    "_tasks": "tasks",
    "_migrations": "migrations",
    "_jinja_extensions": "Jinja extensions",
}
MAX_CONFIG_BYTES = 1_000_000
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_OWNER_RE = re.compile(r"^([a-z]+:)?([a-z0-9-]+/)?[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$")
_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+((a|b|rc)[0-9]+)?$")


class TemplateError(ValueError):
    """A template or its manifest is unusable; the message names the file and field."""


class TemplateRefusedError(TemplateError):
    """A template needs a feature the portal never runs (tasks, secrets ...)."""


@dataclasses.dataclass(frozen=True)
class TemplateInfo:
    """A template's manifest and questions; ``path`` is its folder for bundled templates."""

    name: str
    title: str
    description: str
    tags: tuple[str, ...]
    owner: str
    version: str
    questions: tuple[Field, ...]
    path: Path | None = None
    # True: Kubernetes manifests Flux applies; False: files only (a library, a skeleton);
    # None: not declared, detected from what each render writes.
    deploys: bool | None = None


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Load a YAML file, returning the data and its node tree (for line numbers)."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise TemplateError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read: {exc}") from exc
    stream = YamlStream(text)
    read = list(stream)
    if stream.problem is not None:
        line = stream.problem.line
        where = f"{path}:{line}" if line is not None else str(path)
        raise TemplateError(f"{where}: invalid YAML: {stream.problem.reason}")
    documents = [document.data for document in read]
    node = read[0].node if len(read) == 1 else None
    if len(documents) == 1:
        return documents[0], node
    merged: dict[str, Any] = {}  # Copier merges the documents of a multi-document file
    for document in documents:
        if not isinstance(document, dict):
            raise TemplateError(f"{path}: every YAML document must be a mapping")
        merged.update(document)
    return merged, None


def _line(node: yaml.Node | None, key: str) -> str:
    line = line_of(node, [key], nearest=False)
    return f":{line}" if line is not None else ""


def _read_manifest(path: Path) -> dict[str, Any]:
    data, node = _read_yaml(path)
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: must be a mapping with {', '.join(MANIFEST_FIELDS)}")
    for key in data:
        if key not in MANIFEST_FIELDS:
            raise TemplateError(f"{path}{_line(node, str(key))}: field {key!r} is unknown")
    for key in ("title", "owner", "version"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise TemplateError(f"{path}{_line(node, key)}: field {key!r} is required text")
    tags = data.get("tags", [])
    problems = {
        "description": not isinstance(data.get("description", ""), str),
        "tags": not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags),
        "owner": not _OWNER_RE.match(data["owner"]),
        "version": not _VERSION_RE.match(data["version"]),
        "deploys": not isinstance(data.get("deploys", False), bool),
    }
    hints = {
        "description": "must be text",
        "tags": "must be a list of text",
        "owner": "must be a catalog Group, e.g. platform-team",
        "version": "must be a version like 1.2.0 (quoted if YAML reads it as a number)",
        "deploys": "must be true or false",
    }
    for key, bad in problems.items():
        if bad:
            raise TemplateError(f"{path}{_line(node, key)}: field {key!r} {hints[key]}")
    return data


def _check_safe(name: str, folder: Path, config: dict[str, Any], source: Path) -> None:
    for key, feature in UNSAFE_SETTINGS.items():
        if config.get(key):
            raise TemplateRefusedError(
                f"template {name} needs {feature} ({key} in {source}); "
                "the portal runs templates with unsafe=False"
            )
    if (folder / ".gitmodules").exists():
        raise TemplateRefusedError(f"template {name} uses git submodules, which are not fetched")
    subdirectory = str(config.get("_subdirectory") or "")
    if subdirectory.startswith("/") or ".." in Path(subdirectory).parts:
        raise TemplateError(f"{source}: field '_subdirectory' must stay inside the template")
    root = folder.resolve()
    for path in folder.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise TemplateRefusedError(
                f"template {name}: {path.relative_to(folder)} links outside the template"
            )


def load_template(folder: Path, name: str | None = None, *, manifest: bool = True) -> TemplateInfo:
    """Inspect one template folder; ``manifest=False`` makes ``template.yaml`` optional."""
    name = name or folder.name
    if not _NAME_RE.match(name):
        raise TemplateError(f"{folder}: template name {name!r} must be a DNS-1123 label")
    configs = [folder / file for file in COPIER_FILES if (folder / file).is_file()]
    if len(configs) != 1:
        raise TemplateError(f"{folder}: needs exactly one of {' or '.join(COPIER_FILES)}")
    config, _ = _read_yaml(configs[0])
    if not isinstance(config, dict):
        raise TemplateError(f"{configs[0]}: must be a mapping of settings and questions")
    _check_safe(name, folder, config, configs[0])
    try:
        questions = tuple(parse_questions(config, str(configs[0])))
    except QuestionError as exc:
        raise TemplateError(str(exc)) from exc
    for field in questions:
        if field.secret:
            raise TemplateRefusedError(
                f"template {name} asks the secret question {field.name!r} ({configs[0]}); "
                "answers are committed to the GitOps repository, where no secret may be written"
            )
    if (folder / MANIFEST).is_file():
        data = _read_manifest(folder / MANIFEST)
    elif manifest:
        raise TemplateError(
            f"{folder / MANIFEST}: missing (title, description, tags, owner, version)"
        )
    else:
        data = {"title": name, "owner": "", "version": ""}
    return TemplateInfo(
        name=name,
        title=data["title"].strip(),
        description=str(data.get("description", "")).strip(),
        tags=tuple(data.get("tags", [])),
        owner=data["owner"],
        version=data["version"],
        questions=questions,
        path=folder if manifest else None,
        deploys=data.get("deploys"),
    )
