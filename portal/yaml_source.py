"""Safe, bounded YAML reading that remembers where every value came from (for file:line errors).

The one reader of the YAML the portal is given (catalog files, GitOps manifests, SLO specs
and alert windows, template manifests): PyYAML's safe loader (no Python objects), alias
bombs and deep nesting refused, duplicate mapping keys recorded, and each document's node
tree kept so a caller can give the line of a path of keys. Text in, data and lines out: it
reads no file and imports nothing of the portal, so the pure SLO rule compiler can use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

try:  # libyaml is several times faster; the pure-Python loader behaves the same.
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - wheels ship libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_DEPTH = 200

KeyPath = Sequence[str | int]


class SafeLoader(_BaseLoader):
    """The safe loader, with a shortcut for the tag resolution it does for every node.

    Mapping keys given twice are recorded in ``duplicates`` as (key, line): PyYAML would
    silently keep the last value, and callers that refuse them need to say where.
    """

    def __init__(self, stream: str) -> None:
        """Start reading ``stream``, with no duplicate key seen yet."""
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """Return the same tag as ``Resolver.resolve``, skipping its work when none can apply.

        A quoted scalar, or a plain one whose first character starts no implicit resolver
        (``payments``, ``Handles card payments``), is a string; collections get the default
        tags. Everything else, and any loader with path resolvers, takes the normal route.
        """
        resolvers = self.yaml_implicit_resolvers
        if not self.yaml_path_resolvers and None not in resolvers:
            if kind is yaml.ScalarNode:
                if not implicit[0] or (value and value[0] not in resolvers):
                    return self.DEFAULT_SCALAR_TAG
            elif kind is yaml.MappingNode:
                return self.DEFAULT_MAPPING_TAG
            elif kind is yaml.SequenceNode:
                return self.DEFAULT_SEQUENCE_TAG
        tag: Any = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        """Build a mapping as the safe loader does, recording keys it has seen before."""
        seen: set[Any] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    self.duplicates.append((key.value, key.start_mark.line + 1))
                seen.add(key.value)
        return super().construct_mapping(node, deep=deep)


class YamlLimitError(ValueError):
    """Raised when a YAML stream exceeds the configured size or alias limits."""


def line_of(node: yaml.Node | None, path: KeyPath, *, nearest: bool = True) -> int | None:
    """Return the 1-based line of the value at ``path`` in ``node``'s tree.

    For a mapping key this is the key's own line, so ``spec`` points at ``spec:``. When the
    path does not exist, the line of its nearest existing parent (the document's first line
    at worst), or None with ``nearest=False``; None without a tree.
    """
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path:
        found = _child(node, part)
        if found is None:
            return line if nearest else None
        line, node = found
    return line


def _child(node: yaml.Node, part: str | int) -> tuple[int, yaml.Node] | None:
    """Return the line of ``part`` inside ``node`` and its value node."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                return key_node.start_mark.line + 1, value_node
        return None
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item: yaml.Node = node.value[part]
        return item.start_mark.line + 1, item
    return None


def compose_nodes(text: str) -> tuple[yaml.Node, ...]:
    """Return the node tree of every document of ``text`` (none when it is not valid YAML).

    Composing builds no values and expands no aliases, so it needs no bounds; it is for
    finding lines again in text that has already been read.
    """
    try:
        return tuple(yaml.compose_all(text, Loader=SafeLoader))
    except yaml.YAMLError:
        return ()


@dataclass
class YamlDocument:
    """One document of a multi-document stream, with the node tree kept for line lookups."""

    index: int
    line: int
    data: Any
    node: yaml.Node

    def line_of(self, path: KeyPath) -> int:
        """Return the 1-based line of the field at ``path`` (or of its nearest existing parent).

        For a mapping key this is the key's own line, so ``spec`` points at ``spec:`` even
        when the missing field would have been inside it.
        """
        line = line_of(self.node, path)
        return self.line if line is None else line


@dataclass(frozen=True)
class YamlProblem:
    """Why a stream stopped early: a syntax error, an exceeded limit, or another YAML error.

    ``reason`` is PyYAML's own wording (or the limit exceeded); callers add their prefix.
    """

    kind: Literal["syntax", "limit", "yaml"]
    reason: str
    line: int | None = None


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
        if depth > MAX_DEPTH:
            raise YamlLimitError(f"YAML nesting deeper than {MAX_DEPTH} levels")
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


_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _MAP, _SEQ = _TAG + "str", _TAG + "null", _TAG + "map", _TAG + "seq"
_CONVERTED = (_TAG + "bool", _TAG + "int", _TAG + "float")
_SPECIAL_KEYS = (_TAG + "merge", _TAG + "value")


class _NotPlain(Exception):  # noqa: N818 - a signal, not an error
    """The document uses YAML features the fast path leaves to PyYAML's constructor."""


class _PlainBuilder:
    """Build a document without anchors from its node tree, checking the limits on the way.

    Equivalent to :func:`_check_aliases` then ``construct_document`` for documents made of
    maps, sequences and str/null/bool/int/float scalars (nearly every file read), and
    several times cheaper; anything else raises :class:`_NotPlain` and takes the full path.
    Duplicate keys are kept aside until the document is built, so a document that falls
    back to the full path does not report them twice.
    """

    def __init__(self, loader: SafeLoader, max_nodes: int) -> None:
        self.loader = loader
        self.max_nodes = max_nodes
        self.count = 0
        self.duplicates: list[tuple[str, int]] = []

    def build(self, node: yaml.Node, depth: int) -> Any:
        """Return the value of ``node`` at nesting ``depth``; scalar children are inlined."""
        if depth > MAX_DEPTH:
            raise YamlLimitError(f"YAML nesting deeper than {MAX_DEPTH} levels")
        start = self.count
        self.count += 1
        value: Any
        if type(node) is yaml.ScalarNode:
            value = self.scalar(node)
        elif type(node) is yaml.MappingNode and node.tag == _MAP:
            if node.value and depth >= MAX_DEPTH:  # where the first child would fail
                raise YamlLimitError(f"YAML nesting deeper than {MAX_DEPTH} levels")
            value = {}
            for key_node, value_node in node.value:
                if type(key_node) is not yaml.ScalarNode or key_node.tag in _SPECIAL_KEYS:
                    raise _NotPlain
                key = self.scalar(key_node)
                if type(value_node) is yaml.ScalarNode:
                    value[key] = self.scalar(value_node)
                    self.count += 2
                else:
                    self.count += 1
                    value[key] = self.build(value_node, depth + 1)
            if len(value) < len(node.value):  # only then can a key have been given twice
                self.note_duplicates(node)
        elif type(node) is yaml.SequenceNode and node.tag == _SEQ:
            if node.value and depth >= MAX_DEPTH:
                raise YamlLimitError(f"YAML nesting deeper than {MAX_DEPTH} levels")
            value = []
            for item in node.value:
                if type(item) is yaml.ScalarNode:
                    value.append(self.scalar(item))
                    self.count += 1
                else:
                    value.append(self.build(item, depth + 1))
        else:
            raise _NotPlain
        if self.count - start > self.max_nodes:
            raise YamlLimitError(f"YAML document would expand to more than {self.max_nodes} values")
        return value

    def note_duplicates(self, node: yaml.MappingNode) -> None:
        """Record each key of ``node`` equal to an earlier one, at its own line."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.scalar(key_node)
            if key in seen:
                self.duplicates.append((key_node.value, key_node.start_mark.line + 1))
            seen.add(key)

    def scalar(self, node: yaml.Node) -> Any:
        """Return the value of a scalar node the way ``SafeConstructor`` builds it."""
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        if tag in _CONVERTED:
            try:
                return self.loader.yaml_constructors[tag](self.loader, node)
            except Exception as exc:  # the full path reports it, in its own order
                raise _NotPlain from exc
        raise _NotPlain


class YamlStream:
    """Documents of a stream, read one at a time; ``problem`` is set once iteration stops early.

    Reading lazily lets the caller finish with each document (and its node tree) before the
    next one is built, so a large file never holds every node tree in memory at once.
    ``duplicates`` lists the mapping keys given twice, as (key, line), in reading order.
    Subclasses choose the loader (``loader``), e.g. one with other constructors.
    """

    loader: type[SafeLoader] = SafeLoader

    def __init__(self, text: str, *, max_aliases: int = 100, max_nodes: int = 1_000_000) -> None:
        """Prepare to read ``text``; nothing is parsed until iteration."""
        self.text = text
        self.max_aliases = max_aliases
        self.max_nodes = max_nodes
        self.count = 0
        self.problem: YamlProblem | None = None
        self.duplicates: list[tuple[str, int]] = []

    def __iter__(self) -> Iterator[YamlDocument]:
        """Yield each document; stop cleanly at a syntax error or an exceeded limit."""
        loader = self.loader(self.text)
        plain = "&" not in self.text  # without anchors there can be no aliases
        try:
            while loader.check_node():
                node = loader.get_node()
                if node is None:
                    continue
                data = self._construct(loader, node, plain)
                document = YamlDocument(self.count, node.start_mark.line + 1, data, node)
                self.count += 1
                yield document
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            self.problem = YamlProblem("syntax", str(exc.problem or exc), line)
        except YamlLimitError as exc:
            self.problem = YamlProblem("limit", str(exc))
        except yaml.YAMLError as exc:
            self.problem = YamlProblem("yaml", str(exc))
        finally:
            loader.dispose()

    def _construct(self, loader: SafeLoader, node: yaml.Node, plain: bool) -> Any:
        if plain and self.max_nodes >= 1:
            builder = _PlainBuilder(loader, self.max_nodes)
            try:
                data = builder.build(node, 0)
            except _NotPlain:
                pass
            else:
                self.duplicates.extend(builder.duplicates)
                return data
        _check_aliases(node, self.max_aliases, self.max_nodes)
        loader.duplicates.clear()
        data = loader.construct_document(node)
        self.duplicates.extend(loader.duplicates)
        return data
