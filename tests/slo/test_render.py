"""The YAML text writer and the Go-compatible number and duration formats."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.slo.compiler.generate import generate_sources
from portal.slo.compiler.promql import (
    format_duration,
    go_float,
    go_float_fixed,
    go_quote,
    label_filter,
    parse_duration,
)
from portal.slo.compiler.render import dump, key, scalar, value

any_text = st.text(st.characters(codec="utf-8"), max_size=40)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: not name.startswith("sloth_")
)


@given(any_text)
def test_any_scalar_reads_back_unchanged(text: str) -> None:
    assert yaml.safe_load(f"k: {scalar(text)}\n") == {"k": text}


@given(any_text, any_text)
def test_any_value_and_key_read_back_unchanged(name: str, text: str) -> None:
    document = f"outer:\n  {key(name)}:{value(text, '    ')}\n  after: 1\n"
    assert yaml.safe_load(document) == {"outer": {name: text, "after": 1}}


@given(
    st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=20),
        min_size=2,
        max_size=5,
    )
)
def test_multi_line_text_reads_back_unchanged(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert yaml.safe_load(f"a:\n  expr:{value(text, '    ')}\n  b: x\n") == {
        "a": {"expr": text, "b": "x"}
    }


def test_multi_line_expressions_are_literal_blocks() -> None:
    assert value("a\n/\nb\n", "  ") == " |\n  a\n  /\n  b"
    assert value("a\nb", "  ") == " |-\n  a\n  b"
    assert value(" leading space\nb", "  ").startswith(' "')
    assert scalar("it's") == "'it''s'"
    assert key("on") == "'on'"
    assert key("sloth_id") == "sloth_id"


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3)
    ),
    max_leaves=12,
)


@given(st.dictionaries(any_text, values, max_size=4))
def test_dump_reads_back_unchanged(data: dict[str, Any]) -> None:
    assert yaml.safe_load(dump(data, ["a header\nover two lines"])) == (data or None)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (99.9 / 100, "0.9990000000000001"),
        ((100 - 99.9) / 100, "0.0009999999999999432"),
        (30.0, "30"),
        (5.6000000000000005, "5.6000000000000005"),
        (1e-05, "1e-05"),
        (0.00012, "0.00012"),
        (1.5e-07, "1.5e-07"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (123456789.0, "1.23456789e+08"),
        (-0.5, "-0.5"),
        (0.0, "0"),
        (math.inf, "+Inf"),
    ],
)
def test_go_float_prints_like_go(number: float, text: str) -> None:
    assert go_float(number) == text


def test_go_float_fixed_never_uses_an_exponent() -> None:
    assert [go_float_fixed(x) for x in (99.9, 95.0, 99.99, 1e-07, 1e21)] == [
        "99.9",
        "95",
        "99.99",
        "0.0000001",
        "1000000000000000000000",
    ]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_go_float_round_trips(number: float) -> None:
    assert float(go_float(number)) == number
    assert float(go_float_fixed(number)) == number


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("5m", "5m"),
        ("72h", "3d"),
        ("24h", "1d"),
        ("28d", "4w"),
        ("30d", "30d"),
        ("36h", "1d12h"),
        ("1h30m", "1h30m"),
        ("365d", "1y"),
        ("90s", "1m30s"),
        ("0", "0s"),
    ],
)
def test_durations_print_like_prometheus(text: str, printed: str) -> None:
    assert format_duration(parse_duration(text)) == printed


@pytest.mark.parametrize("text", ["", "1.5h", "30 d", "5", "1h1d", "-5m", "5M"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_label_filters_are_sorted_and_go_quoted() -> None:
    assert label_filter({"b": 'say "hi"', "a": "x\ny"}) == '{a="x\\ny", b="say \\"hi\\""}'
    assert go_quote("🦥\x7f") == '"🦥\\x7f"'


objectives = st.floats(min_value=0.001, max_value=99.999, allow_nan=False).filter(
    lambda x: 0 < x < 100
)


@settings(max_examples=40, deadline=None)
@given(objectives, st.dictionaries(label_names, any_text.filter(bool), max_size=4))
def test_any_valid_objective_and_labels_round_trip(
    objective: float, labels: dict[str, str]
) -> None:
    spec = {
        "version": "prometheus/v1",
        "service": "svc",
        "labels": labels,
        "slos": [
            {
                "name": "slo",
                "objective": objective,
                "sli": {"raw": {"error_ratio_query": "x[{{.window}}]"}},
                "alerting": {"page_alert": {"disable": True}, "ticket_alert": {"disable": True}},
            }
        ],
    }
    (output,) = generate_sources({"slo.yaml": yaml.safe_dump(spec)})

    (document,) = yaml.safe_load_all(output.text)
    rules = {rule["record"]: rule for group in document["groups"] for rule in group["rules"]}
    info = rules["sloth_slo_info"]["labels"]
    assert float(info["sloth_objective"]) == objective
    assert {name: info[name] for name in labels} == labels
    assert rules["slo:objective:ratio"]["expr"] == f"vector({go_float(objective / 100)})"
    assert float(rules["slo:objective:ratio"]["expr"][7:-1]) == objective / 100
