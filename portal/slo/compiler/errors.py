"""One error type for bad SLO specs and windows files, naming the file, line, SLO and field."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml
from pydantic import ValidationError

from portal.yaml_source import YamlStream, compose_nodes, line_of

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class SpecError:
    """What is wrong, and where: ``slo.yaml:12: SLO "x": objective: must be above 0 ...``.

    ``field`` is relative to the SLO when ``slo`` is set (``sli.events.error_query``), else
    to the document (``version``); ``path`` is the JSONPath within the document.
    """

    file: str
    message: str
    slo: str | None = None
    field: str = ""
    line: int | None = None
    path: str = "$"

    def __str__(self) -> str:
        """Render the one-line message shown on the command line and in review."""
        parts = [f"{self.file}:{self.line}" if self.line else self.file]
        if self.slo is not None:
            parts.append(f'SLO "{self.slo}"')
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class InvalidSpecError(ValueError):
    """All the errors found in one or more files (never only the first)."""

    def __init__(self, errors: Iterable[SpecError]) -> None:
        """Keep every error, in file order."""
        self.errors = tuple(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


def json_path(location: Location) -> str:
    """Render a location as JSONPath: ``("slos", 1, "objective")`` -> ``$.slos[1].objective``."""
    out = "$"
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def dotted(location: Location) -> str:
    """Render a location for people: ``("sli", "events")`` -> ``sli.events``, indexes as [i]."""
    out = ""
    for part in location:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class Document:
    """One YAML document of a file: its data, and (only when an error needs a line) its nodes.

    Node trees are built again from the text on demand: keeping them for every document
    would double the objects the garbage collector walks while generating 1,000 SLOs.
    """

    source: str
    index: int
    data: Any
    text: str = ""

    @property
    def node(self) -> yaml.Node | None:
        """The document's node tree, with line numbers (composed from the text, cached)."""
        nodes = _compose(self.text)
        return nodes[self.index] if self.index < len(nodes) else None

    def error(
        self,
        location: Location,
        message: str,
        *,
        slo_prefix: Location = ("slos",),
        slo: str | None = None,
    ) -> SpecError:
        """Build an error at ``location``, naming the SLO when the location is inside one.

        Without an explicit ``slo``, a location under ``slo_prefix`` + index names the SLO
        at that index and the field is made relative to it.
        """
        field = location
        depth = len(slo_prefix)
        if (
            slo is None
            and len(location) > depth
            and location[:depth] == slo_prefix
            and isinstance(location[depth], int)
        ):
            slo = _slo_name(self.data, slo_prefix, int(location[depth]))
            field = location[depth + 1 :]
        return SpecError(
            file=self.source,
            message=message,
            slo=slo,
            field=dotted(field),
            line=line_of(self.node, location),
            path=json_path(location),
        )

    def validation_errors(
        self,
        error: ValidationError,
        *,
        prefix: Location = (),
        slo_prefix: Location = ("slos",),
    ) -> list[SpecError]:
        """Turn a pydantic ValidationError into InvalidSpecError with friendly messages."""
        return [
            self.error(
                (*prefix, *item["loc"]),
                friendly_message(item["type"], item["msg"]),
                slo_prefix=slo_prefix,
            )
            for item in error.errors()
        ]


def _slo_name(data: Any, prefix: Location, index: int) -> str:
    node = data
    for part in prefix:
        node = node.get(part) if isinstance(node, dict) and isinstance(part, str) else None
    if isinstance(node, list) and 0 <= index < len(node):
        item = node[index]
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
            return str(item["name"])
    return f"#{index + 1}"


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required",
}


def friendly_message(kind: str, message: str) -> str:
    """Shorten pydantic's wording: ``Extra inputs are not permitted`` -> ``unknown field``."""
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


@lru_cache(maxsize=16)
def _compose(text: str) -> tuple[yaml.Node | None, ...]:
    return compose_nodes(text)


def read_documents(source: str, text: str) -> tuple[list[Document], list[SpecError]]:
    """Parse every YAML document of a file (empty documents are skipped).

    Duplicate mapping keys are errors (PyYAML would silently keep the last one). Only the
    data is kept: a document's nodes are composed again when an error needs a line.
    """
    documents: list[Document] = []
    stream = YamlStream(text)
    for document in stream:
        if document.data is not None:
            documents.append(Document(source, document.index, document.data, text))
    if stream.problem is not None:
        problem = stream.problem
        return documents, [SpecError(source, f"invalid YAML: {problem.reason}", line=problem.line)]
    return documents, [
        SpecError(source, f"duplicate key {key!r}", line=line)
        for key, line in sorted(stream.duplicates, key=lambda item: item[1])
    ]
