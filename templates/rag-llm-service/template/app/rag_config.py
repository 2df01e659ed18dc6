"""``rag.yaml``: the reviewed retrieval settings, read with every problem reported at once.

Each problem reads ``rag.yaml line N: field: why``, so a reviewer (or the portal's *rag
eval* check) can point at the line. The YAML is composed rather than loaded so that every
value still knows its line. The node helpers here serve the evaluation set's reader too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

EMBEDDING_MODES = ("lexical", "model")
_FIELDS = {
    "chunking": ("chunk_size", "chunk_overlap"),
    "retrieval": ("top_k", "min_score"),
    "prompt": ("name", "label"),
    "evaluation": ("set", "tolerance"),
}


class RagConfigError(ValueError):
    """``rag.yaml`` cannot be used; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RagConfig:
    """How documents are chunked, how many passages answer, and how answers are judged."""

    chunk_size: int
    chunk_overlap: int
    top_k: int
    min_score: dict[str, float]
    prompt_name: str
    prompt_label: str
    eval_set: Path
    tolerance: float


def compose_file(path: Path) -> tuple[yaml.Node | None, list[str]]:
    """Parse a YAML file into its node tree, or return the problem (with its line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, [f"{path.name}: cannot be read: {error}"]
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), []
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        return None, [f"{path.name} line {line}: not valid YAML: {error.problem}"]
    except yaml.YAMLError as error:
        return None, [f"{path.name}: not valid YAML: {error}"]


def line_of(node: yaml.Node) -> int:
    """Return the 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


def mapping(
    node: yaml.Node, where: str, problems: list[str], file: str
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Return a mapping node's entries (key -> (key node, value node)), noting problems."""
    if not isinstance(node, yaml.MappingNode):
        problems.append(
            f"{file} line {line_of(node)}: {where.rstrip('.') or 'document'}: must be a mapping"
        )
        return {}
    entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        name = str(key.value)
        if name in entries:
            problems.append(f"{file} line {line_of(key)}: {where}{name}: given twice")
        entries[name] = (key, value)
    return entries


class Structure:
    """Stands for a mapping or list where a scalar was expected (shown as "a mapping")."""

    def __init__(self, node: yaml.Node) -> None:
        self.kind = "a mapping" if isinstance(node, yaml.MappingNode) else "a list"

    def __repr__(self) -> str:
        return self.kind


def scalar(node: yaml.Node) -> object:
    """Return a scalar node's value as PyYAML's safe loader types it (str, int, float...)."""
    if not isinstance(node, yaml.ScalarNode):
        return Structure(node)  # callers report it as the wrong type
    return yaml.SafeLoader("").construct_object(node)


def load_rag_config(path: Path) -> RagConfig:
    """Read and check ``rag.yaml``; raise :class:`RagConfigError` listing every problem."""
    file = path.name
    root, problems = compose_file(path)
    if root is None:
        raise RagConfigError(problems or [f"{file}: empty"])
    sections = mapping(root, "", problems, file)
    if problems and not sections:
        raise RagConfigError(problems)
    values: dict[str, object] = {}
    nodes: dict[str, yaml.Node] = {}
    keys: dict[str, yaml.Node] = {}
    for name in sections.keys() - _FIELDS.keys():
        key, _ = sections[name]
        problems.append(f"{file} line {line_of(key)}: {name}: unknown section")
    for section, fields in _FIELDS.items():
        if section not in sections:
            problems.append(f"{file} line {line_of(root)}: {section}: missing")
            continue
        key, value = sections[section]
        if not isinstance(value, yaml.MappingNode):
            problems.append(f"{file} line {line_of(value)}: {section}: must be a mapping")
            continue
        entries = mapping(value, f"{section}.", problems, file)
        for name in entries.keys() - set(fields):
            problems.append(
                f"{file} line {line_of(entries[name][0])}: {section}.{name}: unknown field"
            )
        for name in fields:
            field = f"{section}.{name}"
            if name not in entries:
                problems.append(f"{file} line {line_of(key)}: {field}: missing")
                continue
            keys[field], nodes[field] = entries[name]
            values[field] = scalar(entries[name][1])

    def bad(field: str, why: str) -> None:
        problems.append(f"{file} line {line_of(nodes[field])}: {field}: {why}")

    def number(field: str, low: float, high: float, *, integer: bool) -> float | None:
        if field not in values:
            return None
        value = values[field]
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            bad(field, f"must be {'an integer' if integer else 'a number'}, got {value!r}")
            return None
        if not low <= value <= high:
            bad(field, f"must be between {low} and {high}, got {value}")
            return None
        return value

    chunk_size = number("chunking.chunk_size", 100, 20_000, integer=True)
    chunk_overlap = number("chunking.chunk_overlap", 0, 20_000, integer=True)
    if chunk_size is not None and chunk_overlap is not None and chunk_overlap >= chunk_size:
        bad("chunking.chunk_overlap", f"must be smaller than chunk_size ({chunk_size})")
    top_k = number("retrieval.top_k", 1, 50, integer=True)
    tolerance = number("evaluation.tolerance", 0, 1, integer=False)
    min_score = _min_score(
        keys.get("retrieval.min_score"), nodes.get("retrieval.min_score"), problems, file
    )
    prompt_name = _name(values, nodes, "prompt.name", problems, file)
    prompt_label = _name(values, nodes, "prompt.label", problems, file)
    eval_set = _relative_path(values, nodes, "evaluation.set", problems, file)
    if problems:
        raise RagConfigError(problems)
    # Without problems every value was read; these only tell the type checker so.
    assert chunk_size is not None
    assert chunk_overlap is not None
    assert top_k is not None
    assert tolerance is not None
    assert min_score is not None
    assert eval_set is not None
    return RagConfig(
        chunk_size=int(chunk_size),
        chunk_overlap=int(chunk_overlap),
        top_k=int(top_k),
        min_score=min_score,
        prompt_name=prompt_name,
        prompt_label=prompt_label,
        eval_set=path.parent / eval_set,
        tolerance=float(tolerance),
    )


def _min_score(
    key: yaml.Node | None, node: yaml.Node | None, problems: list[str], file: str
) -> dict[str, float] | None:
    if key is None or node is None:
        return None
    field = "retrieval.min_score"
    before = len(problems)
    entries = mapping(node, f"{field}.", problems, file)
    scores: dict[str, float] = {}
    for name in entries.keys() - set(EMBEDDING_MODES):
        problems.append(
            f"{file} line {line_of(entries[name][0])}: {field}.{name}: unknown embedding mode "
            f"(use {', '.join(EMBEDDING_MODES)})"
        )
    for mode in EMBEDDING_MODES:
        if mode not in entries:
            problems.append(f"{file} line {line_of(key)}: {field}.{mode}: missing")
            continue
        value = scalar(entries[mode][1])
        where = f"{file} line {line_of(entries[mode][1])}: {field}.{mode}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where}: must be a number, got {value!r}")
        elif not 0 <= value <= 1:
            problems.append(f"{where}: must be between 0 and 1, got {value}")
        else:
            scores[mode] = float(value)
    return scores if len(problems) == before else None


def _name(
    values: dict[str, object],
    nodes: dict[str, yaml.Node],
    field: str,
    problems: list[str],
    file: str,
) -> str:
    if field not in values:
        return ""
    value = values[field]
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        problems.append(
            f"{file} line {line_of(nodes[field])}: {field}: must be a non-empty name, got {value!r}"
        )
        return ""
    return value


def _relative_path(
    values: dict[str, object],
    nodes: dict[str, yaml.Node],
    field: str,
    problems: list[str],
    file: str,
) -> Path | None:
    if field not in values:
        return None
    value = values[field]
    where = f"{file} line {line_of(nodes[field])}: {field}"
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: must be a path, got {value!r}")
        return None
    posix = PurePosixPath(value)
    if posix.is_absolute() or ".." in posix.parts or "\\" in value:
        problems.append(f"{where}: must be a path inside the repository, got {value!r}")
        return None
    return Path(*posix.parts)
