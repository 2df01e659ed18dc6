"""Which metrics a PromQL expression reads: functions, keywords, labels and strings are not."""

from __future__ import annotations

import pytest

from portal.review.promql_selectors import Matcher, vector_selectors


def metrics(query: str) -> list[str | None]:
    return [selector.metric for selector in vector_selectors(query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("up", ["up"]),
        ('sum(rate(http_requests_total{code=~"5.."}[5m]))', ["http_requests_total"]),
        ("sum by (code, job) (rate(a_total[5m]))", ["a_total"]),
        ("SUM WITHOUT (instance) (a_total)", ["a_total"]),
        (
            "sum(rate(a_total[5m])) by (code) / ignoring(code) group_left(x) b_total",
            ["a_total", "b_total"],
        ),
        ("a_total / on(job) group_right b_total > bool 0", ["a_total", "b_total"]),
        (
            "a_total offset 1h30m and b_total unless c_total or d_total",
            ["a_total", "b_total", "c_total", "d_total"],
        ),
        ("rate(a_total[5m:1m] @ start())", ["a_total"]),
        ('label_replace(a_total, "dst", "$1", "src", "(foo_total)")', ["a_total"]),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", ["h_bucket"]),
        ('topk(3, a_total) + count_values("v", b_total)', ["a_total", "b_total"]),
        ('{__name__="a_total", job="x"}', ["a_total"]),
        ('{__name__=~"a_.*"}', [None]),
        ('{"my.metric", job="x"}', ["my.metric"]),
        ("job:requests:rate5m", ["job:requests:rate5m"]),
        ("vector(1) - time() + 1e3 * -2 + Inf + nan", []),
        ("a_total # trailing comment with b_total", ["a_total"]),
    ],
)
def test_metrics_read(query: str, expected: list[str | None]) -> None:
    assert metrics(query) == expected


def test_matchers_are_read_with_their_operator_and_unquoted_value() -> None:
    (selector,) = vector_selectors('a{job="api", code=~"5..", path!="/x\\"y", env!~\'dev\'}')

    assert selector.matchers == (
        Matcher("job", "=", "api"),
        Matcher("code", "=~", "5.."),
        Matcher("path", "!=", '/x"y'),
        Matcher("env", "!~", "dev"),
    )
    assert selector.positive("job") == [Matcher("job", "=", "api")]
    assert selector.positive("env") == []


@pytest.mark.parametrize(
    ("matcher", "value", "matched"),
    [
        (Matcher("job", "=", "api"), "api", True),
        (Matcher("job", "!=", "api"), "api", False),
        (Matcher("job", "=~", "ap"), "api", False),  # anchored, as in Prometheus
        (Matcher("job", "=~", "ap.*"), "api", True),
        (Matcher("job", "!~", "ap.*"), "api", False),
        (Matcher("job", "=~", "(unclosed"), "api", False),
    ],
)
def test_matchers_match_as_prometheus_does(matcher: Matcher, value: str, matched: bool) -> None:
    assert matcher.matches(value) is matched


def test_unreadable_text_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot read the query"):
        vector_selectors("a_total ? b_total")
