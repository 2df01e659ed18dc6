"""Bad specs: one error per problem, naming the file, line, SLO and field; all collected."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.slo.compiler.errors import InvalidSpecError, SpecError
from portal.slo.compiler.generate import GenerateOptions, generate_sources

VALID: dict[str, Any] = {
    "version": "prometheus/v1",
    "service": "myservice",
    "labels": {"owner": "myteam"},
    "slos": [
        {
            "name": "requests-availability",
            "objective": 99.9,
            "sli": {
                "events": {
                    "error_query": 'sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))',
                    "total_query": "sum(rate(http_requests_total[{{.window}}]))",
                }
            },
            "alerting": {"name": "MyServiceHighErrorRate"},
        }
    ],
}


def errors_of(spec: Any, options: GenerateOptions | None = None) -> list[SpecError]:
    text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False)
    with pytest.raises(InvalidSpecError) as caught:
        generate_sources({"slo.yaml": text}, options)
    return list(caught.value.errors)


def changed(**slo_changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(VALID)
    spec["slos"][0].update(slo_changes)
    return spec


def test_the_valid_spec_generates() -> None:
    assert generate_sources({"slo.yaml": yaml.safe_dump(VALID)})


@pytest.mark.parametrize("objective", [100, 0, 101, -1, 100.0001])
def test_objective_outside_0_100_names_file_line_slo_and_field(objective: float) -> None:
    (error,) = errors_of(changed(objective=objective))

    assert str(error).startswith(
        'slo.yaml:7: SLO "requests-availability": objective: must be above 0 and below 100'
    )
    assert (error.file, error.slo, error.field) == (
        "slo.yaml",
        "requests-availability",
        "objective",
    )
    assert error.path == "$.slos[0].objective"


def test_objective_must_be_a_number() -> None:
    (error,) = errors_of(changed(objective=True))
    assert error.field == "objective"


def test_missing_queries() -> None:
    (error,) = errors_of(changed(sli={}))
    assert error.field == "sli"
    assert "one of events (error_query and total_query) or raw is required" in error.message

    (error,) = errors_of(changed(sli={"events": {"error_query": "x[{{.window}}]"}}))
    assert (error.field, error.message) == ("sli.events.total_query", "required")

    (error,) = errors_of(changed(sli={"events": {"error_query": "", "total_query": "y"}}))
    assert error.field == "sli.events.error_query"


def test_events_and_raw_together_are_an_error() -> None:
    sli = {**VALID["slos"][0]["sli"], "raw": {"error_ratio_query": "x[{{.window}}]"}}
    (error,) = errors_of(changed(sli=sli))
    assert (error.field, error.message) == ("sli", "only one of events and raw may be set")


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("slo", "objetive"),
        ("top", "servce"),
        ("alerting", "alerting.page_alrt"),
        ("sli", "sli.events.errors_query"),
    ],
)
def test_unknown_fields_are_errors(where: str, field: str) -> None:
    spec = copy.deepcopy(VALID)
    slo = spec["slos"][0]
    if where == "slo":
        slo["objetive"] = 99
    elif where == "top":
        spec["servce"] = "typo"
    elif where == "alerting":
        slo["alerting"]["page_alrt"] = {"disable": True}
    else:
        slo["sli"]["events"]["errors_query"] = "x"

    (error,) = errors_of(spec)

    assert (error.field, error.message) == (field, "unknown field")
    assert error.slo == (None if where == "top" else "requests-availability")


def test_duplicate_slo_names() -> None:
    spec = copy.deepcopy(VALID)
    spec["slos"].append(copy.deepcopy(spec["slos"][0]))

    (error,) = errors_of(spec)

    assert (error.slo, error.field) == ("requests-availability", "name")
    assert error.message == "duplicate SLO name (also slos[0])"
    assert error.path == "$.slos[1].name"


def test_unsupported_version() -> None:
    (error,) = errors_of({**VALID, "version": "prometheus/v999"})
    assert (error.slo, error.field) == (None, "version")
    assert "prometheus/v999" in error.message


@pytest.mark.parametrize("name", ["plug-l3", "1abc", "a.b", "é"])
def test_label_names_outside_prometheus_charset(name: str) -> None:
    (error,) = errors_of(changed(labels={name: "v"}))
    assert error.field == "labels"
    assert f'invalid label name "{name}"' in error.message
    assert "[a-zA-Z_][a-zA-Z0-9_]*" in error.message


def test_label_names_everywhere_are_checked() -> None:
    spec = copy.deepcopy(VALID)
    spec["labels"] = {"bad-service": "v"}
    spec["slos"][0]["alerting"] = {
        "name": "A",
        "labels": {"bad-alert": "v"},
        "annotations": {"bad-annotation": "v"},
        "page_alert": {"labels": {"bad-page": "v"}},
    }

    fields = {error.field for error in errors_of(spec)}

    assert fields == {
        "labels",
        "alerting.labels",
        "alerting.annotations",
        "alerting.page_alert.labels",
    }


def test_generator_labels_cannot_be_set() -> None:
    (error,) = errors_of(changed(labels={"sloth_id": "mine"}))
    assert "sloth_id is set by the generator" in error.message


def test_empty_label_values_are_errors() -> None:
    (error,) = errors_of(changed(labels={"team": ""}))
    assert "team has an empty value" in error.message


def test_alert_name_is_required_while_an_alert_is_enabled() -> None:
    (error,) = errors_of(changed(alerting={}))
    assert (error.field, error.path) == ("alerting.name", "$.slos[0].alerting.name")

    disabled = {"page_alert": {"disable": True}, "ticket_alert": {"disable": True}}
    assert generate_sources({"slo.yaml": yaml.safe_dump(changed(alerting=disabled))})


def test_only_the_window_can_be_templated() -> None:
    (error,) = errors_of(changed(sli={"raw": {"error_ratio_query": "x[{{ .period }}]"}}))
    assert error.field == "sli.raw.error_ratio_query"
    assert "only {{.window}}" in error.message


def test_every_error_of_a_file_is_reported() -> None:
    spec = copy.deepcopy(VALID)
    spec["slos"][0]["objective"] = 100
    spec["slos"].append({"name": "latency", "objective": 0, "sli": {}, "alerting": {"name": "L"}})
    spec["labels"] = {"bad-label": "x"}

    errors = errors_of(spec)

    assert [(error.slo, error.field) for error in errors] == [
        (None, "labels"),
        ("requests-availability", "objective"),
        ("latency", "objective"),
        ("latency", "sli"),
    ]


def test_errors_of_several_files_and_documents_are_all_reported() -> None:
    bad = yaml.safe_dump(changed(objective=100))
    sources = {"a.yaml": f"{bad}---\n{bad}", "b.yaml": "version: prometheus/v2\n"}

    with pytest.raises(InvalidSpecError) as caught:
        generate_sources(sources)

    assert [(error.file, error.field) for error in caught.value.errors] == [
        ("a.yaml", "objective"),
        ("a.yaml", "objective"),
        ("b.yaml", "version"),
    ]


def test_yaml_syntax_errors_carry_the_line() -> None:
    (error,) = errors_of("version: prometheus/v1\nservice: [unclosed\nslos: []\n")
    assert error.line == 3
    assert error.message.startswith("invalid YAML")


def test_duplicate_keys_are_errors() -> None:
    text = yaml.safe_dump(VALID, sort_keys=False) + "service: other\n"
    errors = errors_of(text)
    assert [str(error) for error in errors] == [
        f"slo.yaml:{text.count(chr(10))}: duplicate key 'service'"
    ]


def test_alias_bombs_are_refused_not_expanded() -> None:
    text = "version: prometheus/v1\nservice: &s payments\nlabels: {"
    text += ", ".join(f"l{i}: *s" for i in range(101)) + "}\nslos: []\n"
    (error,) = errors_of(text)
    assert str(error) == "slo.yaml: invalid YAML: more than 100 YAML aliases"


def test_documents_that_are_not_slo_specs() -> None:
    (error,) = errors_of("apiVersion: v1\nkind: ConfigMap\n")
    assert "not an SLO spec" in error.message
    (error,) = errors_of("")
    assert "empty" in error.message


def test_period_too_short_to_scale_is_an_error() -> None:
    # Periods without a windows file get Pyrra's scaled windows; a day is too short for them.
    (error,) = errors_of(VALID, GenerateOptions(period="1d"))
    assert error.message.startswith("the SLO period 1d is too short for multiwindow alerts")
    assert "(the shortest period is 2d19h12m)" in error.message


def test_extra_labels_are_checked() -> None:
    (error,) = errors_of(VALID, GenerateOptions(extra_labels={"bad-name": "x"}))
    assert error.file == "--extra-label"


WINDOWS = """\
apiVersion: sloth.slok.dev/v1
kind: AlertWindows
spec:
  sloPeriod: {period}
  page:
    quick: {{errorBudgetPercent: 2, shortWindow: {short}, longWindow: 1h}}
    slow: {{errorBudgetPercent: 5, shortWindow: 30m, longWindow: 6h}}
  ticket:
    quick: {{errorBudgetPercent: 10, shortWindow: 2h, longWindow: 1d}}
    slow: {{errorBudgetPercent: 10, shortWindow: 6h, longWindow: {long}}}
"""


@pytest.mark.parametrize(
    ("period", "short", "long", "field", "message"),
    [
        ("30d", "8m", "3d", "spec.page.quick.shortWindow", "8m does not divide longWindow 1h"),
        ("30d", "2h", "3d", "spec.page.quick.shortWindow", "2h must be shorter than longWindow 1h"),
        ("2d", "5m", "3d", "spec.ticket.slow.longWindow", "3d is longer than sloPeriod 2d"),
        ("30d1m", "5m", "3d", "spec.sloPeriod", "is not a whole number of page.quick"),
        ("30d", "1.5m", "3d", "spec.page.quick.shortWindow", "is not a duration"),
    ],
)
def test_windows_that_do_not_divide_are_errors(
    tmp_path: Path, period: str, short: str, long: str, field: str, message: str
) -> None:
    path = tmp_path / "windows.yaml"
    path.write_text(WINDOWS.format(period=period, short=short, long=long), encoding="utf-8")

    errors = errors_of(VALID, GenerateOptions(windows=path, period=period))

    assert [error.field for error in errors] == [field]
    assert message in errors[0].message
    assert errors[0].file == str(path)
