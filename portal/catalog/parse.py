"""Safe, bounded YAML reading that remembers where every value came from (for error lines)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

try:  # libyaml is several times faster; the pure-Python loader behaves the same.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - wheels ship libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


class YamlLimitError(ValueError):
    """Raised when a YAML stream exceeds the configured size or alias limits."""


@dataclass
class YamlDocument:
    """One document of a multi-document stream, with the node tree kept for line lookups."""

    index: int
    line: int
    data: Any
    node: yaml.Node

    def line_of(self, path: Sequence[str | int]) -> int:
        """Return the 1-based line of the field at ``path`` (or of its nearest existing parent).

        For a mapping key this is the key's own line, so ``spec`` points at ``spec:`` even
        when the missing field would have been inside it.
        """
        node: yaml.Node = self.node
        line = node.start_mark.line + 1
        for part in path:
            found = _child(node, part)
            if found is None:
                break
            line, node = found
        return line


@dataclass
class YamlReadResult:
    """Every document that could be read, plus the syntax error that stopped the stream, if any."""

    documents: list[YamlDocument]
    error: str | None = None
    error_line: int | None = None


def _child(node: yaml.Node, part: str | int) -> tuple[int, yaml.Node] | None:
    """Return the line of ``part`` inside ``node`` and its value node."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                return key_node.start_mark.line + 1, value_node
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]
        return item.start_mark.line + 1, item
    return None


def _check_aliases(node: yaml.Node, max_aliases: int, max_nodes: int) -> None:
    """Reject alias bombs: count re-used nodes and the size the document would expand to."""
    seen: set[int] = set()
    sizes: dict[int, int] = {}
    aliases = 0

    def expanded(current: yaml.Node, depth: int) -> int:
        nonlocal aliases
        ident = id(current)
        if ident in seen:
            aliases += 1
            if aliases > max_aliases:
                raise YamlLimitError(f"more than {max_aliases} YAML aliases")
            return sizes.get(ident, 1)
        if depth > 200:
            raise YamlLimitError("YAML nesting deeper than 200 levels")
        seen.add(ident)
        total = 1
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                total += expanded(key_node, depth + 1) + expanded(value_node, depth + 1)
        elif isinstance(current, yaml.SequenceNode):
            for item in current.value:
                total += expanded(item, depth + 1)
        if total > max_nodes:
            raise YamlLimitError(f"YAML document would expand to more than {max_nodes} values")
        sizes[ident] = total
        return total

    expanded(node, 0)


def read_yaml_stream(
    text: str, *, max_aliases: int = 100, max_nodes: int = 1_000_000
) -> YamlReadResult:
    """Read every document of ``text`` with the safe loader, stopping cleanly at a syntax error."""
    loader = _Loader(text)
    documents: list[YamlDocument] = []
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _check_aliases(node, max_aliases, max_nodes)
            data = loader.construct_document(node)
            documents.append(YamlDocument(index, node.start_mark.line + 1, data, node))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return YamlReadResult(documents, f"YAML syntax error: {exc.problem}", line)
    except YamlLimitError as exc:
        return YamlReadResult(documents, str(exc), None)
    except yaml.YAMLError as exc:
        return YamlReadResult(documents, f"YAML error: {exc}", None)
    finally:
        loader.dispose()
    return YamlReadResult(documents)
