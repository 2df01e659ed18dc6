"""The rules file, ``remediation.yaml``: its models, and :func:`load_config` naming every problem.

The file is reviewed configuration: rendered into ``deploy/base/remediation.yaml``, turned
into the ConfigMap ``<name>-remediation`` by the base's ``configMapGenerator`` (its hash
suffix rolls the pods when the rules change) and mounted read-only where ``REMEDIATION_FILE``
points. Every problem is reported with the file, the line and the field (``remediation.yaml,
line 6, rules[0].action.step: ...``), all at once, so one review fixes them all; the
service refuses to start on a file with any (:func:`load_rules_file`).

Pure: PyYAML and pydantic, no package-relative import.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SEVERITIES = ("warning", "critical")  # lowest first, as the detector grades a window
Severity = Literal["warning", "critical"]
MAX_CONFIG_BYTES = 1024 * 1024
_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_IMAGE = r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Signal(_Strict):
    """Which anomalies a rule acts on: those of ``query`` at ``min_severity`` or above."""

    query: str = Field(min_length=1, max_length=2000)
    min_severity: Severity = "critical"


class _Action(_Strict):
    service: str = Field(pattern=_LABEL)
    environment: str = Field(pattern=_LABEL)


class ScaleOut(_Action):
    """Raise the autoscaler's minimum in one environment by ``step``, up to ``max``."""

    type: Literal["scale_out"]
    step: int = Field(default=1, ge=1, le=10)
    max: int = Field(ge=1, le=100)


class Rollback(_Action):
    """Deploy the image tag released before the one running (``tag_history``, oldest first)."""

    type: Literal["rollback"]
    image: str = Field(pattern=_IMAGE, max_length=255)
    tag_history: list[str] = Field(min_length=2, max_length=200)

    @field_validator("tag_history", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        for tag in value if isinstance(value, list) else ():
            if isinstance(tag, int | float):
                raise ValueError(f"quote the tag {tag}: YAML reads an unquoted tag as a number")
            if isinstance(tag, str) and (tag == "latest" or not _TAG.match(tag)):
                raise ValueError(f"{tag!r} is not a pinned image tag")
        if isinstance(value, list) and len(set(map(str, value))) != len(value):
            raise ValueError("each tag once: the history is an order of releases")
        return value


class Restart(_Action):
    """Roll the pods of one environment (a new pod template annotation)."""

    type: Literal["restart"]


Action = Annotated[ScaleOut | Rollback | Restart, Field(discriminator="type")]


class Rule(_Strict):
    """A signal, the action it proposes, and how often: ``cooldown`` s, ``max_per_hour``."""

    name: str = Field(pattern=_LABEL)
    signal: Signal
    action: Action
    cooldown: int = Field(default=1800, ge=0, le=7 * 86400)
    max_per_hour: int = Field(default=2, ge=1, le=60)


class StateSource(_Strict):
    """How the deployed state is read: the label naming the environment in Prometheus."""

    environment_label: str = Field(default="cluster", pattern=r"^([a-zA-Z_][a-zA-Z0-9_]*)?$")


class RemediationConfig(_Strict):
    """The whole ``remediation.yaml``."""

    dry_run: bool = True
    detector_url: str | None = Field(default=None, max_length=500)
    state: StateSource = StateSource()
    rules: list[Rule] = Field(default_factory=list, max_length=200)

    @field_validator("detector_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        parts = urlsplit(value or "")
        if value is not None and (parts.scheme not in {"http", "https"} or not parts.hostname):
            raise ValueError("an http or https URL with a host, the address reviewers open")
        if parts.username or parts.password:
            raise ValueError("a URL without credentials (it is shown in every proposal)")
        return value.rstrip("/") if value else None


class RulesError(ValueError):
    """``remediation.yaml`` is not valid; each problem names the line and the field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _node_at(root: yaml.Node, loc: tuple[Any, ...]) -> tuple[yaml.Node, str]:
    """Follow a pydantic error location through the YAML nodes: the deepest node, the path."""
    node, path = root, ""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            values = {key.value: value for key, value in node.value}
            if part in values:
                node, path = values[part], f"{path}.{part}" if path else str(part)
            elif values.get("type") is not None and values["type"].value == part:
                continue  # the tag pydantic adds for a union member, not a key
            else:
                path = f"{path}.{part}" if path else str(part)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else node
            path = f"{path}[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return node, path


def _duplicate_keys(node: yaml.Node, source: str, found: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            if key.value in seen:
                found.append(f"{source}, line {key.start_mark.line + 1}: {key.value} given twice")
            seen.add(key.value)
            _duplicate_keys(value, source, found)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, source, found)


def load_config(text: str, source: str = "remediation.yaml") -> RemediationConfig:
    """Parse and validate ``text``; raise :class:`RulesError` naming each line and field."""
    if len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise RulesError([f"{source}: larger than {MAX_CONFIG_BYTES // 1024} KiB"])
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = f", line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise RulesError([f"{source}{line}: not valid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise RulesError([f"{source}: not valid YAML: {exc}"]) from None
    if root is None:
        return RemediationConfig()
    problems: list[str] = []
    _duplicate_keys(root, source, problems)
    if not isinstance(data, dict):
        problems.append(f"{source}, line 1: a mapping (dry_run, detector_url, state, rules)")
    if problems:
        raise RulesError(problems)
    try:
        config = RemediationConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            node, path = _node_at(root, error["loc"])
            where = f"{source}, line {node.start_mark.line + 1}, {path or 'the file'}"
            problems.append(f"{where}: {error['msg']}")
        raise RulesError(problems) from None
    names: dict[str, int] = {}
    for index, rule in enumerate(config.rules):
        if rule.name in names:
            node, path = _node_at(root, ("rules", index, "name"))
            problems.append(
                f"{source}, line {node.start_mark.line + 1}, {path}: {rule.name!r} already "
                f"names rules[{names[rule.name]}]: each rule has its own cooldown"
            )
        names.setdefault(rule.name, index)
    if problems:
        raise RulesError(problems)
    return config


def load_rules_file(path: Path) -> RemediationConfig:
    """Read and validate the rules file at ``path``; raise :class:`RulesError` naming it.

    A file that is missing, unreadable or not UTF-8 is refused like an invalid one: the
    detector never runs with rules other than the reviewed ones.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RulesError(
            [f"{path}: not found (set REMEDIATION_FILE to the rules file's path)"]
        ) from None
    except OSError as exc:
        raise RulesError([f"{path}: cannot be read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise RulesError([f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RulesError([f"{path}, line {line}: not UTF-8 text"]) from None
    return load_config(text, source=str(path))
