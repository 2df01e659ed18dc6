"""The Traces search's query string and its TraceQL: per-field errors, and escaping that holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.integrations.trace_source import MAX_RESULTS, TraceQuery
from portal.integrations.traceql import traceql, traceql_duration, traceql_string
from portal.traces.search import parse_query

NOW = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


def lex(text: str) -> tuple[str, list[str]]:
    """Split TraceQL into its skeleton (literals as "") and the decoded literals.

    Reads string literals as Tempo's lexer (Go's) does: a backslash escapes the next
    character, a raw newline inside a literal is an error.
    """
    skeleton: list[str] = []
    literals: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != '"':
            skeleton.append(char)
            index += 1
            continue
        value: list[str] = []
        index += 1
        while True:
            assert index < len(text), "unterminated literal"
            char = text[index]
            assert char != "\n", "raw newline in a literal"
            if char == '"':
                index += 1
                break
            if char == "\\":
                code = text[index + 1]
                if code == "x":
                    value.append(chr(int(text[index + 2 : index + 4], 16)))
                    index += 4
                else:
                    value.append(_ESCAPES[code])
                    index += 2
                continue
            value.append(char)
            index += 1
        skeleton.append('""')
        literals.append("".join(value))
    return "".join(skeleton), literals


def test_every_field_is_read() -> None:
    parsed = parse_query(
        {
            "service": " air-quality-monitor ",
            "operation": "POST /api/check",
            "min_ms": "250",
            "max_ms": "1500.5",
            "errors": "on",
            "attr": "http.route=/api/check=x",
            "from": "2024-05-14T09:00:00",
            "to": "15m",
            "limit": "20",
            "hx-request": "true",
        },
        now=NOW,
    )
    assert parsed.ok, parsed.errors
    assert parsed.query == TraceQuery(
        service="air-quality-monitor",
        operation="POST /api/check",
        min_duration_ms=250.0,
        max_duration_ms=1500.5,
        errors_only=True,
        attribute=("http.route", "/api/check=x"),
        start=datetime(2024, 5, 14, 9, 0, tzinfo=UTC),
        end=NOW - timedelta(minutes=15),
        limit=20,
    )


def test_nothing_given_is_the_default_query() -> None:
    parsed = parse_query({"service": "", "errors": "", "limit": ""}, now=NOW)
    assert parsed.ok and parsed.query == TraceQuery()


def test_each_bad_field_gets_its_own_error() -> None:
    parsed = parse_query(
        {
            "service": "a\x00b",
            "operation": "x" * 300,
            "min_ms": "fast",
            "max_ms": "-1",
            "errors": "maybe",
            "attr": "no equals sign",
            "from": "yesterday",
            "to": "2024-13-01",
            "limit": "0",
        },
        now=NOW,
    )
    assert set(parsed.errors) == {
        "service",
        "operation",
        "min_ms",
        "max_ms",
        "errors",
        "attr",
        "from",
        "to",
        "limit",
    }
    assert "control character" in parsed.errors["service"]
    assert "256" in parsed.errors["operation"]
    assert "'fast'" in parsed.errors["min_ms"]
    assert "key=value" in parsed.errors["attr"]
    assert "ISO 8601" in parsed.errors["from"]
    assert str(MAX_RESULTS) in parsed.errors["limit"]
    # Bad fields fall back to their defaults; the query is still usable.
    assert parsed.query == TraceQuery()


@pytest.mark.parametrize("raw", ["nan", "inf", "-0.5", "1e400"])
def test_durations_must_be_finite_and_not_negative(raw: str) -> None:
    assert "min_ms" in parse_query({"min_ms": raw}, now=NOW).errors


def test_range_order_is_checked() -> None:
    parsed = parse_query({"min_ms": "500", "max_ms": "100", "from": "1h", "to": "2h"}, now=NOW)
    assert parsed.errors == {
        "max_ms": "max_ms must not be less than min_ms",
        "to": "to must be later than from",
    }
    assert parsed.query.min_duration_ms == 500 and parsed.query.max_duration_ms is None
    assert parsed.query.start == NOW - timedelta(hours=1) and parsed.query.end is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("now", NOW),
        ("30s", NOW - timedelta(seconds=30)),
        ("1h", NOW - timedelta(hours=1)),
        ("2d", NOW - timedelta(days=2)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2024-05-14T10:00:00Z", datetime(2024, 5, 14, 10, tzinfo=UTC)),
        ("2024-05-14T12:00:00+02:00", datetime(2024, 5, 14, 10, tzinfo=UTC)),
    ],
)
def test_times_are_iso_or_relative(raw: str, expected: datetime) -> None:
    parsed = parse_query({"from": raw}, now=NOW)
    assert parsed.ok and parsed.query.start == expected


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("TRUE", True), ("off", False)])
def test_errors_flag(raw: str, expected: bool) -> None:
    assert parse_query({"errors": raw}).query.errors_only is expected


# "\uff11\uff10" is "10" in full-width digits: str.isdigit says yes, int() reads it.
@pytest.mark.parametrize("raw", ["201", "\uff11\uff10", "-3", "5.0"])
def test_limit_bounds(raw: str) -> None:
    assert "limit" in parse_query({"limit": raw}).errors


def test_empty_query_is_every_trace() -> None:
    assert traceql(TraceQuery()) == "{}"


def test_traceql_of_a_full_query() -> None:
    query = TraceQuery(
        service="air-quality-monitor",
        operation="POST /api/check",
        min_duration_ms=250,
        max_duration_ms=1.5,
        errors_only=True,
        attribute=("http.response.status_code", "502"),
    )
    assert traceql(query) == (
        '{ resource.service.name = "air-quality-monitor" && name = "POST /api/check" }'
        " && { status = error }"
        ' && { .http.response.status_code = "502" || .http.response.status_code = 502 }'
        " && { traceDuration >= 250ms && traceDuration <= 1500us }"
    )


def test_an_odd_attribute_name_is_quoted() -> None:
    query = TraceQuery(attribute=('x-forwarded "for"', "a"))
    assert traceql(query) == '{ ."x-forwarded \\"for\\"" = "a" }'


@pytest.mark.parametrize(
    ("milliseconds", "literal"), [(0, "0ms"), (1500, "1500ms"), (0.25, "250us"), (1e-6, "1ns")]
)
def test_durations(milliseconds: float, literal: str) -> None:
    assert traceql_duration(milliseconds) == literal


def test_a_hostile_value_stays_one_literal() -> None:
    hostile = 'x" } || { true } && { name = "\\'
    text = traceql(TraceQuery(service=hostile))
    skeleton, literals = lex(text)
    assert skeleton == '{ resource.service.name = "" }'
    assert literals == [hostile]


def test_control_characters_are_escaped() -> None:
    assert traceql_string("a\nb\x00\x7f\t\r") == '"a\\nb\\x00\\x7f\\t\\r"'
    assert traceql_string("\ud800") == '"\ufffd"'


@given(service=st.text(), operation=st.text(), value=st.text())
def test_no_value_changes_the_query_structure(service: str, operation: str, value: str) -> None:
    query = TraceQuery(service=service, operation=operation, attribute=("http.route", value))
    skeleton, literals = lex(traceql(query))
    base = '{ resource.service.name = "" && name = "" } && { .http.route = "" }'
    assert skeleton in (base, base[:-2] + f" || .http.route = {value} }}")
    assert literals == [service, operation, value]


@given(key=st.text(min_size=1))
def test_no_key_changes_the_query_structure(key: str) -> None:
    skeleton, literals = lex(traceql(TraceQuery(attribute=(key, "v"))))
    if literals == [key, "v"]:
        assert skeleton == '{ ."" = "" }'
    else:  # a plain name: letters, digits and _ in dotted parts, nothing TraceQL reads
        assert literals == ["v"]
        assert skeleton == f'{{ .{key} = "" }}'
        assert key.replace(".", "_").replace("_", "a").isalnum() and key.isascii()
