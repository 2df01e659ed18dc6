"""YAML text written directly: rule files, PrometheusRule objects and small documents.

A YAML library's dumper takes seconds for the rules of 1,000 SLOs; writing the text is
about ten times faster. Every scalar is quoted so no value changes type on the way back
(``tier: "2"`` stays a string, ``on`` stays ``on``): single quotes for printable one-line
text, JSON-style double quotes with escapes for anything else, and literal blocks for
multi-line expressions so reviewers read PromQL as written. ``yaml.safe_load`` of the
output gives back exactly the strings that went in (a property test checks this).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from portal.slo.compiler.rules import Rule, RuleGroup

# Characters YAML cannot hold in a one-line single-quoted scalar (line breaks, C0/C1
# controls, non-characters, lone surrogates).
_NOT_SINGLE_QUOTABLE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]"
)
# Same, but line feeds are fine: the test for literal blocks.
_NOT_LITERAL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]"
)
# What json.dumps(ensure_ascii=False) leaves raw but YAML does not accept raw.
_JSON_LEFTOVERS = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Words YAML 1.1 readers (PyYAML, Go's yaml.v2) turn into booleans or null.
_SPECIAL_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def double_quoted(text: str) -> str:
    """Quote any text JSON-style in double quotes (valid YAML), escaping what YAML needs."""
    quoted = json.dumps(text, ensure_ascii=False)
    return _JSON_LEFTOVERS.sub(lambda match: f"\\u{ord(match.group(0)):04x}", quoted)


def scalar(text: str) -> str:
    """Quote a one-line value: ``'text'`` when printable, else double-quoted with escapes."""
    if _NOT_SINGLE_QUOTABLE.search(text):
        return double_quoted(text)
    return "'" + text.replace("'", "''") + "'"


def key(name: str) -> str:
    """Write a mapping key: plain when YAML cannot misread the identifier, else quoted."""
    if _PLAIN_KEY.match(name) and name.lower() not in _SPECIAL_WORDS:
        return name
    return scalar(name)


def _literal_ok(text: str) -> bool:
    if "\n" not in text or _NOT_LITERAL.search(text):
        return False
    first = next((line for line in text.split("\n") if line), "")
    # A first content line starting with a blank would be taken as extra indentation.
    return bool(first) and first[0] not in " \t"


def value(text: str, indent: str) -> str:
    """Write a value after ``key:``; multi-line text becomes a literal block at ``indent``.

    Returns the text to append right after ``key:`` (starting with a space).
    """
    if not _literal_ok(text):
        return " " + scalar(text)
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    indicator = "|-" if trailing == 0 else "|" if trailing == 1 else "|+"
    lines = [indent + line if line else "" for line in body.split("\n")]
    return " " + indicator + "\n" + "\n".join(lines) + "\n" * max(trailing - 1, 0)


@lru_cache(maxsize=16384)
def _item(name: str, text: str, indent: str) -> str:
    # Labels repeat on every rule of an SLO (and across SLOs): render each pair once.
    return f"{indent}{key(name)}:{value(text, indent + '  ')}"


def _mapping(lines: list[str], name: str, items: Mapping[str, str], indent: str) -> None:
    lines.append(f"{indent}{name}:")
    inner = indent + "  "
    lines.extend(_item(item_key, items[item_key], inner) for item_key in sorted(items))


def _rule(lines: list[str], rule: Rule, indent: str) -> None:
    inner = indent + "  "
    if rule.record:
        lines.append(f"{indent}- record: {scalar(rule.record)}")
    else:
        lines.append(f"{indent}- alert: {scalar(rule.alert)}")
    lines.append(f"{inner}expr:{value(rule.expr, inner + '  ')}")
    if rule.labels:
        _mapping(lines, "labels", rule.labels, inner)
    if rule.annotations:
        _mapping(lines, "annotations", rule.annotations, inner)


def groups_lines(groups: Iterable[RuleGroup], indent: str = "") -> list[str]:
    """Write the ``groups:`` list of a rule file (or of a PrometheusRule spec at ``indent``)."""
    lines: list[str] = []
    inner = indent + "  "
    for group in groups:
        lines.append(f"{indent}- name: {scalar(group.name)}")
        if group.interval:
            lines.append(f"{inner}interval: {scalar(group.interval)}")
        lines.append(f"{inner}rules:")
        for rule in group.rules:
            _rule(lines, rule, inner)
    return lines


def comment(text: str) -> str:
    """Write a ``#`` comment line; line breaks in ``text`` cannot end the comment early."""
    return "# " + " ".join(text.split())


def rule_file(groups: Sequence[RuleGroup], header: Sequence[str]) -> str:
    """Write a Prometheus rule file: one YAML document, as Prometheus reads only the first."""
    lines = [comment(line) for line in header]
    lines.append("")
    if not groups:
        lines.append("groups: []")
    else:
        lines.append("groups:")
        lines += groups_lines(groups)
    return "\n".join(lines) + "\n"


def prometheus_rule(
    groups: Sequence[RuleGroup],
    header: Sequence[str],
    metadata: Mapping[str, Any],
) -> str:
    """Write a Prometheus-Operator ``PrometheusRule`` holding the groups."""
    lines = [comment(line) for line in header]
    lines += ["", "apiVersion: monitoring.coreos.com/v1", "kind: PrometheusRule"]
    lines += dump_lines({"metadata": metadata}, "")
    lines.append("spec:")
    if not groups:
        lines.append("  groups: []")
    else:
        lines.append("  groups:")
        lines += groups_lines(groups, "  ")
    return "\n".join(lines) + "\n"


def _plain_scalar(item: Any, indent: str) -> str:
    """Render a non-container value after ``key:`` or ``-`` (with its leading space)."""
    if isinstance(item, bool):
        return " true" if item else " false"
    if item is None:
        return " null"
    if isinstance(item, int):
        return f" {item}"
    if isinstance(item, float):
        if not math.isfinite(item):
            return " .nan" if math.isnan(item) else " .inf" if item > 0 else " -.inf"
        text = repr(item)
        # YAML 1.1 readers want a dot in exponent floats (1.0e-05, not 1e-05).
        if "e" in text and "." not in text:
            mantissa, _, exponent = text.partition("e")
            text = f"{mantissa}.0e{exponent}"
        return f" {text}"
    return value(str(item), indent + "  ")


def dump_lines(data: Any, indent: str) -> list[str]:
    """Block-style YAML lines for nested dicts and lists of scalars (keys kept in order)."""
    lines: list[str] = []
    if isinstance(data, Mapping):
        for item_key, item in data.items():
            head = f"{indent}{key(str(item_key))}:"
            if isinstance(item, Mapping | list) and item:
                lines.append(head)
                lines += dump_lines(item, indent + ("  " if isinstance(item, Mapping) else ""))
            elif isinstance(item, Mapping | list):
                lines.append(head + (" {}" if isinstance(item, Mapping) else " []"))
            else:
                lines.append(head + _plain_scalar(item, indent))
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, Mapping | list) and item:
                nested = dump_lines(item, indent + "  ")
                lines.append(f"{indent}- {nested[0].lstrip()}")
                lines += nested[1:]
            elif isinstance(item, Mapping | list):
                lines.append(f"{indent}- " + ("{}" if isinstance(item, Mapping) else "[]"))
            else:
                lines.append(f"{indent}-" + _plain_scalar(item, indent))
    return lines


def dump(data: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """Write a small YAML document (promtool tests, metadata) of dicts, lists and scalars."""
    lines = [comment(line) for line in header]
    if header:
        lines.append("")
    return "\n".join(lines + dump_lines(data, "")) + "\n"
