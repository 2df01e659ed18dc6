"""The vector selectors of a PromQL expression: which metrics it reads, with which matchers.

Not a PromQL parser: a tokenizer that knows just enough of the grammar to tell a metric
name from a function, an aggregation, a keyword or a label in ``by (...)``. Strings,
comments, ranges (``[5m]``, subqueries) and numbers are skipped, so nothing inside them is
mistaken for a metric. Good enough to name what an SLO query reads; it never evaluates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>(?:0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)[a-zA-Z0-9_]*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=@,(){}\[\]])
    """,
    re.VERBOSE,
)
# Keywords followed by a parenthesised list of label names, not of expressions.
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = _LABEL_LISTS | {"bool", "offset", "and", "or", "unless", "atan2", "inf", "nan"}
_AGGREGATIONS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    }
)  # fmt: skip
MATCH_OPERATORS = frozenset({"=", "!=", "=~", "!~"})


@dataclass(frozen=True)
class Matcher:
    """One label matcher: ``job="api"`` is ``Matcher("job", "=", "api")``."""

    label: str
    operator: str
    value: str

    def matches(self, value: str) -> bool:
        """Whether a series whose label has ``value`` passes this matcher (anchored regexes)."""
        if self.operator in ("=~", "!~"):
            try:
                found = re.fullmatch(self.value, value) is not None
            except re.error:
                return False
            return found if self.operator == "=~" else not found
        return (value == self.value) if self.operator == "=" else (value != self.value)


@dataclass(frozen=True)
class Selector:
    """A vector selector: its metric name (None when only a regex names it) and matchers."""

    metric: str | None
    matchers: tuple[Matcher, ...]

    def positive(self, label: str) -> list[Matcher]:
        """Matchers that name values of ``label`` (``=`` and ``=~``)."""
        return [m for m in self.matchers if m.label == label and m.operator in ("=", "=~")]


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    # PromQL strings use Go escapes; the common ones are enough to compare label values.
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), body)


def _tokens(query: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:
            raise ValueError(f"cannot read the query at {query[position : position + 20]!r}")
        position = match.end()
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
    return tokens


def _matchers(tokens: list[tuple[str, str]], start: int) -> tuple[list[Matcher], list[str], int]:
    """Read ``{...}`` from ``start`` (the ``{``): matchers, bare quoted names, index after."""
    matchers: list[Matcher] = []
    names: list[str] = []
    index = start + 1
    while index < len(tokens) and tokens[index][1] != "}":
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind in ("ident", "string") and following in MATCH_OPERATORS:
            label = _unquote(text) if kind == "string" else text
            value = tokens[index + 2] if index + 2 < len(tokens) else ("", "")
            if value[0] == "string":
                matchers.append(Matcher(label, following, _unquote(value[1])))
            index += 3
        elif kind == "string":  # Prometheus 3: {"metric.name", job="x"}
            names.append(_unquote(text))
            index += 1
        else:
            index += 1
    return matchers, names, index + 1


def _skip_group(tokens: list[tuple[str, str]], start: int, opening: str, closing: str) -> int:
    depth, index = 0, start
    while index < len(tokens):
        if tokens[index][1] == opening:
            depth += 1
        elif tokens[index][1] == closing:
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return index


def vector_selectors(query: str) -> list[Selector]:
    """Return the vector selectors of ``query`` in order; ValueError on unreadable text."""
    tokens = _tokens(query)
    selectors: list[Selector] = []
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if text == "[":
            index = _skip_group(tokens, index, "[", "]")  # a range or a subquery's durations
            continue
        if kind == "ident" and text.lower() in _LABEL_LISTS and following == "(":
            index = _skip_group(tokens, index + 1, "(", ")")
            continue
        if kind == "ident" and text.lower() in _KEYWORDS:
            index += 1
            continue
        is_call = following == "(" or (
            text.lower() in _AGGREGATIONS and following.lower() in ("by", "without")
        )
        if kind == "ident" and is_call:
            index += 1  # a function or an aggregation: its arguments are read next
            continue
        if kind == "ident" or text == "{":
            metric = text if kind == "ident" else None
            matchers: list[Matcher] = []
            names: list[str] = []
            index += 1
            if metric is None or following == "{":
                start = index - 1 if metric is None else index
                matchers, names, index = _matchers(tokens, start)
            metric = metric or next(iter(names), None)
            exact = [m.value for m in matchers if m.label == "__name__" and m.operator == "="]
            metric = metric or next(iter(exact), None)
            rest = tuple(m for m in matchers if m.label != "__name__")
            selectors.append(Selector(metric, rest))
            continue
        index += 1
    return selectors
