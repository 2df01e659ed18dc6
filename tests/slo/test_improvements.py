"""The opt-in fixes of Sloth's pitfalls, their expressions and their effect in promtool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations.promtool import PromtoolCli
from portal.slo.compiler.generate import GenerateOptions, generate_sources, write_outputs
from portal.slo.compiler.render import dump
from portal.slo.compiler.rules import RuleOptions
from tests.slo.support import parsed

SPEC = """\
version: prometheus/v1
service: api
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total[{{.window}}]))
    alerting:
      name: ApiErrors
  - name: ratio
    objective: 99
    sli:
      raw:
        error_ratio_query: >-
          sum(rate(errors_total[{{.window}}])) / sum(rate(http_requests_total[{{.window}}]))
    alerting:
      name: ApiRatio
"""
SERIES = '{sloth_id="api-availability", sloth_service="api", sloth_slo="availability"}'


def rules(options: RuleOptions | None = None) -> dict[str, str]:
    outputs = generate_sources({"api.yaml": SPEC}, GenerateOptions(rules=options or RuleOptions()))
    return {
        f"{group['name']}:{rule.get('record') or rule['labels']['sloth_severity']}": rule["expr"]
        for group in parsed(outputs)[0]["groups"]
        for rule in group["rules"]
    }


def test_default_output_is_sloths() -> None:
    expr = rules()["sloth-slo-sli-recordings-api-availability:slo:sli_error:ratio_rate5m"]
    assert expr == (
        '(sum(rate(http_requests_total{code=~"5.."}[5m])))\n/\n'
        "(sum(rate(http_requests_total[5m])))\n"
    )


def test_zero_traffic_guard_expressions() -> None:
    found = rules(RuleOptions(zero_traffic_guard=True))
    assert found["sloth-slo-sli-recordings-api-availability:slo:sli_error:ratio_rate5m"] == (
        '(sum(rate(http_requests_total{code=~"5.."}[5m])))\n/\n'
        "((sum(rate(http_requests_total[5m]))) > 0)\n"
    )
    assert found["sloth-slo-sli-recordings-api-ratio:slo:sli_error:ratio_rate1h"] == (
        "((sum(rate(errors_total[1h])) / sum(rate(http_requests_total[1h]))) >= 0)"
    )


def test_error_query_fallback_expression() -> None:
    expr = rules(RuleOptions(error_query_fallback=True))[
        "sloth-slo-sli-recordings-api-availability:slo:sli_error:ratio_rate5m"
    ]
    assert expr.startswith(
        '((sum(rate(http_requests_total{code=~"5.."}[5m]))) or on() vector(0))\n/\n'
    )


def test_inhibited_ticket_alert_expression() -> None:
    found = rules(RuleOptions(inhibit_ticket=True))
    page = found["sloth-slo-alerts-api-availability:page"]
    ticket = found["sloth-slo-alerts-api-availability:ticket"]
    assert ticket.endswith(f"unless on(sloth_id, sloth_service, sloth_slo)\n(\n{page})\n")
    assert page == rules()["sloth-slo-alerts-api-availability:page"]


def test_inhibited_ticket_is_not_expected_during_the_fast_burn() -> None:
    options = GenerateOptions(rules=RuleOptions(inhibit_ticket=True), tests=True)
    outputs = generate_sources({"api.yaml": SPEC}, options)
    test = yaml.safe_load(next(o.text for o in outputs if o.name == "api-availability.test.yaml"))

    fast = test["tests"][0]
    severities = {
        alert["exp_labels"]["sloth_severity"]
        for check in fast["alert_rule_test"]
        for alert in check["exp_alerts"]
    }
    assert severities == {"page"}


def run_expression_test(
    promtool: PromtoolCli, folder: Path, options: RuleOptions, test: dict[str, Any]
) -> str:
    outputs = generate_sources({"api.yaml": SPEC}, GenerateOptions(rules=options))
    write_outputs(outputs, folder)
    document = {"rule_files": ["api.rules.yaml"], "evaluation_interval": "1m", "tests": [test]}
    path = folder / "check.test.yaml"
    path.write_text(dump(document), encoding="utf-8")
    result = promtool.test_rules(path)
    return "" if result.ok else result.output


@pytest.mark.integration
def test_zero_traffic_gives_no_nan(promtool: PromtoolCli, tmp_path: Path) -> None:
    # Counters that do not move: 0 errors out of 0 requests.
    test: dict[str, Any] = {
        "interval": "1m",
        "input_series": [
            {"series": 'http_requests_total{code="500"}', "values": "5x20"},
            {"series": 'http_requests_total{code="200"}', "values": "9x20"},
        ],
        "promql_expr_test": [
            {
                "expr": f"slo:sli_error:ratio_rate5m{SERIES}",
                "eval_time": "10m",
                "exp_samples": [],
            }
        ],
    }
    guarded = RuleOptions(zero_traffic_guard=True)
    assert run_expression_test(promtool, tmp_path, guarded, test) == ""
    # Without the guard Sloth's rule records NaN (0/0), which the test does not expect.
    assert "NaN" in run_expression_test(promtool, tmp_path, RuleOptions(), test)


@pytest.mark.integration
def test_missing_error_series_gives_zero(promtool: PromtoolCli, tmp_path: Path) -> None:
    # Only successful requests so far: the 5xx series does not exist yet.
    labels = SERIES[:-1] + ', sloth_window="5m"}'
    test: dict[str, Any] = {
        "interval": "1m",
        "input_series": [{"series": 'http_requests_total{code="200"}', "values": "0+60x20"}],
        "promql_expr_test": [
            {
                "expr": f"slo:sli_error:ratio_rate5m{SERIES}",
                "eval_time": "10m",
                "exp_samples": [{"labels": f"slo:sli_error:ratio_rate5m{labels}", "value": 0}],
            }
        ],
    }
    fallback = RuleOptions(error_query_fallback=True)
    assert run_expression_test(promtool, tmp_path, fallback, test) == ""
    # Without it the ratio is missing altogether: the service looks like it has no data.
    assert "got: nil" in run_expression_test(promtool, tmp_path, RuleOptions(), test)
