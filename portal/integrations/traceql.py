"""A trace search written as Grafana Tempo's TraceQL.

:func:`traceql` writes a :class:`~portal.integrations.trace_source.TraceQuery` as TraceQL.
Every value a user typed goes into a double-quoted string literal with its backslashes,
quotes and control characters escaped, so no value can end the literal early and change
the query's structure.
"""

from __future__ import annotations

import re

from portal.integrations.trace_source import TraceQuery

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*$")
_INT = re.compile(r"^-?[0-9]{1,18}$")
_FLOAT = re.compile(r"^-?[0-9]{1,15}\.[0-9]{1,15}$")


def traceql_string(value: str) -> str:
    """Return ``value`` as a TraceQL double-quoted string literal (Go's escapes).

    Backslash and quote are escaped, control characters written as escapes (TraceQL's
    lexer ends a literal at a raw newline), and a lone surrogate, which no UTF-8 query
    can carry, becomes U+FFFD.
    """
    out = ['"']
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _attribute_name(key: str) -> str:
    # Unscoped (".name"): the contract matches span and resource attributes alike.
    return "." + (key if _PLAIN_KEY.fullmatch(key) else traceql_string(key))


def _attribute_match(key: str, value: str) -> str:
    name = _attribute_name(key)
    # "Compared as text": a number or boolean attribute must match its written form too,
    # and TraceQL compares "500" with the int 500 as unequal.
    tests = [f"{name} = {traceql_string(value)}"]
    if _INT.fullmatch(value) or _FLOAT.fullmatch(value) or value in ("true", "false"):
        tests.append(f"{name} = {value}")
    return " || ".join(tests)


def traceql_duration(milliseconds: float) -> str:
    """Return a TraceQL duration literal for ``milliseconds`` (whole ms, us or ns)."""
    nanoseconds = round(milliseconds * 1_000_000)
    if nanoseconds % 1_000_000 == 0:
        return f"{nanoseconds // 1_000_000}ms"
    if nanoseconds % 1_000 == 0:
        return f"{nanoseconds // 1_000}us"
    return f"{nanoseconds}ns"


def traceql(query: TraceQuery) -> str:
    """Return the TraceQL selecting the traces ``query`` describes.

    Service and operation select one span (a span of that service with that name); the
    error mark, the attribute and the trace's duration are each a spanset of their own,
    joined with ``&&`` (all must exist in the trace). No condition gives ``{}``.
    """
    spansets: list[str] = []
    span = []
    if query.service is not None:
        span.append(f"resource.service.name = {traceql_string(query.service)}")
    if query.operation is not None:
        span.append(f"name = {traceql_string(query.operation)}")
    if span:
        spansets.append(" && ".join(span))
    if query.errors_only:
        spansets.append("status = error")
    if query.attribute is not None:
        spansets.append(_attribute_match(*query.attribute))
    duration = []
    if query.min_duration_ms is not None:
        duration.append(f"traceDuration >= {traceql_duration(query.min_duration_ms)}")
    if query.max_duration_ms is not None:
        duration.append(f"traceDuration <= {traceql_duration(query.max_duration_ms)}")
    if duration:
        spansets.append(" && ".join(duration))
    if not spansets:
        return "{}"
    return " && ".join(f"{{ {spanset} }}" for spanset in spansets)
