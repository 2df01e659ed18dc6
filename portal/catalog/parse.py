"""Catalog YAML: the portal's safe, bounded, line-aware reader with Backstage's reading of dates.

Reading itself (safe loader, alias and size bounds, node lines) is ``portal.yaml_source``;
this module adds what is the catalog's own: the schema and the wording of its problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portal.yaml_source import SafeLoader, YamlDocument
from portal.yaml_source import YamlStream as _SourceStream


class CatalogLoader(SafeLoader):
    """The safe loader with timestamps and binary values kept as the text they are."""


def _scalar_text(loader: SafeLoader, node: Any) -> Any:
    return node.value


# Backstage reads catalog YAML with the YAML 1.2 core schema: `since: 2024-01-01` stays the
# string it looks like. PyYAML would build date/bytes objects that JSON (the database
# column, the API) cannot hold, so those tags keep their text.
CatalogLoader.add_constructor("tag:yaml.org,2002:timestamp", _scalar_text)
CatalogLoader.add_constructor("tag:yaml.org,2002:binary", _scalar_text)


class YamlStream(_SourceStream):
    """Catalog documents of a stream, read one at a time; ``error`` says why reading stopped."""

    loader = CatalogLoader

    @property
    def error(self) -> str | None:
        """The problem that stopped the stream, worded for the import page, or None."""
        problem = self.problem
        if problem is None:
            return None
        prefix = {"syntax": "YAML syntax error: ", "limit": "", "yaml": "YAML error: "}
        return prefix[problem.kind] + problem.reason

    @property
    def error_line(self) -> int | None:
        """The line of the problem that stopped the stream, when YAML knows it."""
        return self.problem.line if self.problem is not None else None


@dataclass
class YamlReadResult:
    """Every document that could be read, plus the syntax error that stopped the stream, if any."""

    documents: list[YamlDocument]
    error: str | None = None
    error_line: int | None = None


def read_yaml_stream(
    text: str, *, max_aliases: int = 100, max_nodes: int = 1_000_000
) -> YamlReadResult:
    """Read every document of ``text`` with the safe loader, stopping cleanly at a syntax error."""
    stream = YamlStream(text, max_aliases=max_aliases, max_nodes=max_nodes)
    documents = list(stream)
    return YamlReadResult(documents, stream.error, stream.error_line)
