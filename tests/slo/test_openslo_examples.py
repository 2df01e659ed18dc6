"""OpenSLO's own examples (vendored): each converts, or is refused with all its errors at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations.promtool import PromtoolCli
from portal.slo.compiler.errors import InvalidSpecError, SpecError
from portal.slo.compiler.generate import GenerateOptions, generate_sources, write_outputs
from tests.conftest import CONFORMANCE
from tests.slo.support import assert_promtool_passes, parsed

OPENSLO = CONFORMANCE / "openslo"
SPEC_FILES = "schema-test/spec-files/v1"
ANY = '"Any" is not supported: only Prometheus queries'
REDSHIFT = '"Redshift" is not supported'
DATADOG = '"Datadog" is not supported'
NO_WINDOW = "has no {{.window}}: a ratio's queries must be windowed"
CALENDAR = "calendar-aligned windows are not supported"
NO_SLI = 'no SLI named "indicator-ref-string" in the input'
GOOD_OR_BAD = "needs total and exactly one of good and bad"
NO_SOURCE = 'no DataSource named "redshift-datasource" in the input'
INLINE = "spec.indicator.spec.ratioMetric"

# Every error of every file, in line order: (field, part of the message). Empty: converts.
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "examples/budgeting-method/occurences-slo.yaml": [
        # Its empty "alertPolicies:" hides nothing: both blockers are listed.
        ("spec.indicator", "a thresholdMetric has no events to count"),
        ("spec.indicator.spec.thresholdMetric.metricSource.type", ANY),
    ],
    "examples/budgeting-method/ratio-timeslices.yaml": [
        (f"{INLINE}.good.metricSource.type", ANY),
        (f"{INLINE}.total.metricSource.type", ANY),
    ],
    "examples/budgeting-method/timeslices-slo.yaml": [
        (f"{INLINE}.good.metricSource.type", ANY),
        (f"{INLINE}.total.metricSource.type", ANY),
        ("spec.timeWindow[0]", CALENDAR),
    ],
    "examples/treat-low-traffic-as-equally-important/timeslices-slo.yaml": [
        (f"{INLINE}.good.metricSource.type", ANY),
        (f"{INLINE}.total.metricSource.type", ANY),
        ("spec.timeWindow[0]", CALENDAR),
    ],
    f"{SPEC_FILES}/service/service-long-description.yaml": [],
    f"{SPEC_FILES}/service/service-no-displayname.yaml": [],
    f"{SPEC_FILES}/service/service.yaml": [],
    **{
        f"{SPEC_FILES}/sli/sli-{described}ratio-{part}-inline-metricsource.yaml": [
            (f"spec.ratioMetric.{part}.metricSource.type", REDSHIFT),
            ("spec.ratioMetric.total.metricSource.type", REDSHIFT),
        ]
        for described in ("description-", "no-description-")
        for part in ("bad", "good")
    },
    **{
        f"{SPEC_FILES}/sli/sli-{described}ratio-{part}-metricsourceref.yaml": [
            (f"spec.ratioMetric.{part}.metricSource.spec.query", NO_WINDOW),
            ("spec.ratioMetric.total.metricSource.spec.query", NO_WINDOW),
        ]
        for described in ("description-", "no-description-")
        for part in ("bad", "good")
    },
    f"{SPEC_FILES}/sli/sli-description-ratio-inline-metricsource.yaml": [
        ("spec.ratioMetric", GOOD_OR_BAD),
        ("spec.ratioMetric.good.metricSource.type", REDSHIFT),
        ("spec.ratioMetric.bad.metricSource.type", REDSHIFT),
        ("spec.ratioMetric.total.metricSource.type", '"string" is not supported'),
    ],
    **{
        f"{SPEC_FILES}/sli/sli-{described}threshold-inline-metricsource.yaml": [
            ("spec.thresholdMetric.metricSource.type", REDSHIFT),
        ]
        for described in ("description-", "no-description-")
    },
    **{
        f"{SPEC_FILES}/sli/sli-{described}threshold-metricsourceref.yaml": [
            ("spec.thresholdMetric.metricSource.metricSourceRef", NO_SOURCE),
        ]
        for described in ("description-", "no-description-")
    },
    f"{SPEC_FILES}/sli/sli-ratio-good-and-bad.yaml": [
        ("spec.ratioMetric", GOOD_OR_BAD),
        ("spec.ratioMetric.bad.metricSource.spec.query", NO_WINDOW),
        ("spec.ratioMetric.good.metricSource.spec.query", NO_WINDOW),
        ("spec.ratioMetric.total.metricSource.spec.query", NO_WINDOW),
    ],
    **{
        f"{SPEC_FILES}/slo/slo-indicatorref-calendar-{alerts}.yaml": [
            ("spec.indicatorRef", NO_SLI),
            ("spec.timeWindow[0]", CALENDAR),
        ]
        for alerts in ("alerts", "no-alerts")
    },
    **{
        f"{SPEC_FILES}/slo/slo-indicatorref-rolling-{alerts}.yaml": [
            ("spec.indicatorRef", NO_SLI),
            ("spec.timeWindow[0].duration", "the SLO period 1d is too short"),
        ]
        for alerts in ("alerts", "no-alerts")
    },
    **{
        f"{SPEC_FILES}/slo/slo-no-indicatorref-calendar-{alerts}.yaml": [
            (f"{INLINE}.good.metricSource.type", DATADOG),
            (f"{INLINE}.total.metricSource.type", DATADOG),
            ("spec.timeWindow[0]", CALENDAR),
        ]
        for alerts in ("alerts", "no-alerts")
    },
    **{
        f"{SPEC_FILES}/slo/slo-no-indicatorref-rolling-{alerts}.yaml": [
            (f"{INLINE}.good.metricSource.type", DATADOG),
            (f"{INLINE}.total.metricSource.type", DATADOG),
            ("spec.timeWindow[0].duration", "1M (months, quarters, years) has no fixed length"),
        ]
        for alerts in ("alerts", "no-alerts")
    },
}


def errors_of(sources: dict[str, str]) -> list[SpecError]:
    with pytest.raises(InvalidSpecError) as caught:
        generate_sources(sources)
    return list(caught.value.errors)


def test_all_29_examples_are_vendored_and_expected() -> None:
    files = sorted(str(path.relative_to(OPENSLO)) for path in OPENSLO.rglob("*.yaml"))
    assert len(files) == 29
    assert files == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_converts_or_lists_every_error(name: str) -> None:
    text = (OPENSLO / name).read_text(encoding="utf-8")
    expected = EXPECTED[name]
    if not expected:
        # Service objects are accepted and make no rules.
        assert generate_sources({name: text}) == []
        return

    errors = errors_of({name: text})

    assert [error.field for error in errors] == [field for field, _ in expected]
    for error, (_, message) in zip(errors, expected, strict=True):
        assert message in error.message
        assert error.file == name
        assert error.line is not None


PROMETHEUS = "Prometheus"
GOOD = 'sum(rate(http_requests_total{job="shop",code!~"5.."}[{{.window}}]))'
TOTAL = 'sum(rate(http_requests_total{job="shop"}[{{.window}}]))'


def with_prometheus(name: str, queries: dict[str, str]) -> dict[str, Any]:
    """One of the real examples with Prometheus queries and a rolling two-week window."""
    path = OPENSLO / "examples" / "budgeting-method" / name
    slo: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    metric = slo["spec"]["indicator"]["spec"]["ratioMetric"]
    for part, query in queries.items():
        metric[part] = {"metricSource": {"type": PROMETHEUS, "spec": {"query": query}}}
    slo["spec"]["timeWindow"] = [{"duration": "2w", "isRolling": True}]
    return slo


def sli_rules(document: dict[str, Any]) -> dict[str, str]:
    (rules,) = parsed(generate_sources({"slo.yaml": yaml.safe_dump(document)}))
    return {rule["record"]: rule["expr"] for rule in rules["groups"][0]["rules"]}


def test_timeslices_become_the_share_of_bad_slices() -> None:
    slo = with_prometheus("timeslices-slo.yaml", {"good": GOOD, "total": TOTAL})

    rules = sli_rules(slo)

    # Objective "Internal objective": 1m slices, good when their ratio reaches 0.99.
    # The 2w period's shortest alert window is 3m (Pyrra's windows).
    assert rules["slo:sli_error:ratio_rate3m"] == (
        "(1 - avg_over_time((\n"
        '((sum(rate(http_requests_total{job="shop",code!~"5.."}[1m])))\n/\n'
        '(sum(rate(http_requests_total{job="shop"}[1m])))) >= bool 0.99\n'
        ")[3m:1m]))"
    )


def test_ratio_timeslices_average_the_slices_ratios() -> None:
    slo = with_prometheus("ratio-timeslices.yaml", {"good": GOOD, "total": TOTAL})

    rules = sli_rules(slo)

    assert rules["slo:sli_error:ratio_rate1h"] == (
        "(1 - avg_over_time((\n"
        '((sum(rate(http_requests_total{job="shop",code!~"5.."}[1m])))\n/\n'
        '(sum(rate(http_requests_total{job="shop"}[1m]))))\n'
        ")[1h:1m]))"
    )


def test_timeslices_of_a_threshold_metric_through_a_data_source() -> None:
    source = {
        "apiVersion": "openslo/v1",
        "kind": "DataSource",
        "metadata": {"name": "prometheus"},
        "spec": {"type": PROMETHEUS, "connectionDetails": {"url": "http://prometheus:9090"}},
    }
    slo = yaml.safe_load(
        (OPENSLO / "examples" / "budgeting-method" / "occurences-slo.yaml").read_text()
    )
    query = "histogram_quantile(0.99, sum by (le) (rate(search_seconds_bucket[{{.window}}])))"
    slo["spec"]["indicator"]["spec"]["thresholdMetric"]["metricSource"] = {
        "metricSourceRef": "prometheus",
        "spec": {"query": query},
    }
    slo["spec"]["budgetingMethod"] = "Timeslices"
    slo["spec"]["objectives"][0].update(value=0.5, timeSliceTarget=0.95, timeSliceWindow="2m")
    text = "---\n".join(yaml.safe_dump(document) for document in (source, slo))

    (rules,) = parsed(generate_sources({"slo.yaml": text}))

    expr = {rule["record"]: rule["expr"] for rule in rules["groups"][0]["rules"]}
    assert expr["slo:sli_error:ratio_rate15m"] == (
        "(1 - avg_over_time((\n"
        "avg_over_time(((histogram_quantile(0.99, sum by (le) (rate(search_seconds_bucket[2m]))))"
        " < bool 0.5)[2m:]) >= bool 0.95\n)[15m:2m]))"
    )

    # The two-week period's shortest alert window is 3m (Pyrra's windows): 5m slices do not fit.
    slo["spec"]["objectives"][0]["timeSliceWindow"] = "5m"
    text = "---\n".join(yaml.safe_dump(document) for document in (source, slo))
    (error,) = errors_of({"slo.yaml": text})
    assert error.field == "spec.objectives[0].timeSliceWindow"
    assert error.message.startswith(
        "5m is longer than the shortest alert window 3m of the period 2w"
    )


def test_timeslices_need_their_slice_fields() -> None:
    slo = with_prometheus("timeslices-slo.yaml", {"good": GOOD, "total": TOTAL})
    del slo["spec"]["objectives"][0]["timeSliceWindow"]
    slo["spec"]["objectives"][1]["timeSliceTarget"] = 0

    errors = errors_of({"slo.yaml": yaml.safe_dump(slo)})

    assert [(error.slo, error.field) for error in errors] == [
        ("service-availability", "spec.objectives[0].timeSliceWindow"),
        ("service-availability", "spec.objectives[1].timeSliceTarget"),
    ]


@pytest.mark.parametrize(
    ("queries", "field"),
    [
        ({"good": GOOD, "total": "sum(http_requests_total)"}, "total"),
        ({"good": "sum(http_requests_ok)", "total": TOTAL}, "good"),
    ],
)
def test_a_ratio_query_without_window_is_refused_naming_the_field(
    queries: dict[str, str], field: str
) -> None:
    slo = with_prometheus("ratio-timeslices.yaml", queries)
    slo["spec"]["budgetingMethod"] = "Occurrences"

    (error,) = errors_of({"slo.yaml": yaml.safe_dump(slo)})

    assert error.field == f"{INLINE}.{field}.metricSource.spec.query"
    assert "has no {{.window}}" in error.message
    assert "every alert window would get the same value" in error.message


@pytest.mark.integration
def test_timeslice_rules_pass_promtool(promtool: PromtoolCli, tmp_path: Path) -> None:
    documents = [
        with_prometheus("timeslices-slo.yaml", {"good": GOOD, "total": TOTAL}),
        with_prometheus("ratio-timeslices.yaml", {"good": GOOD, "total": TOTAL}),
    ]
    documents[1]["metadata"]["name"] = "main-page-ratio"
    text = "---\n".join(yaml.safe_dump(document) for document in documents)
    outputs = generate_sources({"slo.yaml": text}, GenerateOptions(tests=True))
    assert_promtool_passes(outputs, tmp_path / "rules", promtool)


@pytest.mark.integration
def test_timeslice_error_ratio_counts_bad_slices(promtool: PromtoolCli, tmp_path: Path) -> None:
    """Prometheus itself evaluates the rules: 10 good minutes, then 95% success."""
    slo = with_prometheus("timeslices-slo.yaml", {"good": GOOD, "total": TOTAL})
    slo["spec"]["objectives"] = slo["spec"]["objectives"][:1]  # 1m slices, 0.99 of a slice
    ratio = with_prometheus("ratio-timeslices.yaml", {"good": GOOD, "total": TOTAL})
    text = "---\n".join(yaml.safe_dump(document) for document in (slo, ratio))
    outputs = generate_sources({"slo.yaml": text})
    rule_files = [path.name for path in write_outputs(outputs, tmp_path)]
    # Every minute 100 requests; all good for 10 minutes, then 95 good.
    good = " ".join(
        str(100 * minute if minute <= 10 else 1000 + 95 * (minute - 10)) for minute in range(31)
    )
    series = [
        {"series": 'http_requests_total{job="shop",code="200"}', "values": good},
        {
            "series": 'http_requests_total{job="shop",code="500"}',
            "values": " ".join(str(0 if m <= 10 else 5 * (m - 10)) for m in range(31)),
        },
    ]
    checks = []
    for slo_id, error_before, error_after in (
        ("web-availability-service-availability", 0, 1),  # every slice below 0.99: all bad
        ("web-shop-main-page", 0, 0.05),  # the slices' average ratio is 0.95
    ):
        selector = f'slo:sli_error:ratio_rate15m{{sloth_id="{slo_id}"}}'
        for minute, expected in ((9, error_before), (30, error_after)):
            checks.append(
                {
                    # max() drops the labels; rounding the float noise of 1 - 0.95.
                    "expr": f"max(round({selector}, 0.001))",
                    "eval_time": f"{minute}m",
                    "exp_samples": [{"value": expected}],
                }
            )
    test = {
        "rule_files": rule_files,
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    path = tmp_path / "timeslices.test.yaml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")

    result = promtool.test_rules(path)

    assert result.ok, result.output
