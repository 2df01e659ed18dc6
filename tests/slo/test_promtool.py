"""promtool on the generated rules and unit tests, the promtool integration, the review check."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations.kubernetes import Severity
from portal.integrations.promtool import (
    FakePromtool,
    PromtoolCli,
    PromtoolNotFoundError,
)
from portal.slo.compiler.generate import GenerateOptions, generate, generate_sources, write_outputs
from portal.slo.compiler.rules import RuleOptions
from portal.slo.review import review_slo_file
from tests.slo.support import SRE_SLOS, assert_promtool_passes
from tests.slo.test_conformance import EXAMPLES_OPTIONS, INTEGRATION, INTEGRATION_CASES
from tests.slo.test_formats import CRD, OPENSLO_SLI, OPENSLO_SLO, pyrra


def with_tests(options: dict[str, Any]) -> GenerateOptions:
    return GenerateOptions(**options, tests=True)


@pytest.mark.integration
@pytest.mark.parametrize("case", sorted(INTEGRATION_CASES))
def test_conformance_inputs_pass_promtool(
    case: str, promtool: PromtoolCli, tmp_path: Path, sloth_dir: Path
) -> None:
    source, options = INTEGRATION_CASES[case]
    outputs = generate([sloth_dir / "integration" / source], with_tests(options))

    assert_promtool_passes(outputs, tmp_path, promtool)


@pytest.mark.integration
@pytest.mark.parametrize(
    "name",
    [
        "getting-started",
        "raw-home-wifi",
        "home-wifi",
        "kubernetes-apiserver",
        "no-alerts",
        "multifile",
    ],
)
def test_sloth_examples_pass_promtool(
    name: str, promtool: PromtoolCli, tmp_path: Path, sloth_dir: Path
) -> None:
    options = GenerateOptions(
        extra_labels=EXAMPLES_OPTIONS.extra_labels, rules=EXAMPLES_OPTIONS.rules, tests=True
    )
    outputs = generate([sloth_dir / f"{name}.yml"], options)

    assert_promtool_passes(outputs, tmp_path, promtool)


@pytest.mark.integration
def test_platform_slos_pass_promtool(promtool: PromtoolCli, tmp_path: Path) -> None:
    outputs = generate([SRE_SLOS], GenerateOptions(tests=True))

    assert {output.service for output in outputs} == {"portal", "prometheus", "flux"}
    assert_promtool_passes(outputs, tmp_path, promtool)


@pytest.mark.integration
@pytest.mark.parametrize(
    "rules",
    [
        RuleOptions(zero_traffic_guard=True, error_query_fallback=True, inhibit_ticket=True),
        RuleOptions(optimized=False),
    ],
)
def test_options_pass_promtool(rules: RuleOptions, promtool: PromtoolCli, tmp_path: Path) -> None:
    outputs = generate(
        [INTEGRATION / "in-multifile.yaml"], GenerateOptions(rules=rules, tests=True)
    )
    assert_promtool_passes(outputs, tmp_path, promtool)


@pytest.mark.integration
def test_other_formats_and_windows_pass_promtool(
    promtool: PromtoolCli, tmp_path: Path, sloth_dir: Path
) -> None:
    documents = [OPENSLO_SLI, OPENSLO_SLO, CRD, pyrra({"bool_gauge": {"metric": "up"}})]
    text = "---\n".join(yaml.safe_dump(document) for document in documents)
    outputs = generate_sources({"mixed.yaml": text}, GenerateOptions(tests=True))
    assert_promtool_passes(outputs, tmp_path / "mixed", promtool)

    custom = GenerateOptions(windows=sloth_dir / "windows" / "custom-30d.yaml", tests=True)
    outputs = generate([INTEGRATION / "in-base.yaml"], custom)
    assert_promtool_passes(outputs, tmp_path / "custom", promtool)


@pytest.mark.integration
def test_generated_tests_fail_when_a_threshold_is_wrong(
    promtool: PromtoolCli, tmp_path: Path
) -> None:
    outputs = generate([INTEGRATION / "in-base.yaml"], GenerateOptions(tests=True))
    paths = write_outputs(outputs, tmp_path)
    rules = tmp_path / "svc01.rules.yaml"
    good = rules.read_text(encoding="utf-8")
    test = next(path for path in paths if path.name == "svc01-slo1.test.yaml")
    assert promtool.test_rules(test).ok

    # The ticket alert's slow condition at 1.1x instead of 1x: caught at its first step.
    rules.write_text(good.replace("(1 * 0.0009", "(1.1 * 0.0009"), encoding="utf-8")
    result = promtool.test_rules(test)
    assert not result.ok
    assert "slow burn" in result.output

    # A page alert label changed: the expected alert is not the one that fires.
    rules.write_text(good.replace("alert03k1: 'alert03v1'", "alert03k1: 'x'"), encoding="utf-8")
    result = promtool.test_rules(test)
    assert not result.ok
    assert "fast burn" in result.output


@pytest.mark.integration
def test_review_of_a_good_spec_finds_nothing(promtool: PromtoolCli) -> None:
    path = SRE_SLOS / "portal.yaml"
    assert review_slo_file("portal.yaml", path.read_text(encoding="utf-8"), promtool) == []


@pytest.mark.integration
def test_review_reports_a_rule_file_promtool_rejects(promtool: PromtoolCli) -> None:
    # A query that is not PromQL: the spec is well formed, promtool says no.
    spec = yaml.safe_load((SRE_SLOS / "flux.yaml").read_text(encoding="utf-8"))
    spec["slos"][0]["sli"]["events"]["total_query"] = "sum(rate(x[{{.window}}])"

    findings = review_slo_file("flux.yaml", yaml.safe_dump(spec), promtool)

    # The rule file is rejected, so is the unit test that loads it.
    assert [finding.rule for finding in findings] == [
        "promtool-check-rules",
        "promtool-test-rules",
    ]
    assert findings[0].severity is Severity.ERROR
    assert findings[0].message.startswith(
        "promtool check rules failed on flux.rules.yaml (generated from flux.yaml):"
    )
    assert "parse error" in findings[0].message


def test_missing_promtool_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PromtoolNotFoundError, match=r"promtool not found .*apt-get install"):
        PromtoolCli(tmp_path / "no-such-promtool")


SPEC: dict[str, Any] = yaml.safe_load((SRE_SLOS / "portal.yaml").read_text(encoding="utf-8"))


def test_review_runs_check_and_test_on_every_generated_file() -> None:
    fake = FakePromtool()

    findings = review_slo_file("portal.yaml", yaml.safe_dump(SPEC), fake)

    assert findings == []
    assert list(fake.actions()) == [
        ("check", "portal.rules.yaml"),
        ("test", "portal-requests-availability.test.yaml"),
        ("test", "portal-requests-latency.test.yaml"),
    ]
    assert "rule_files:\n- 'portal.rules.yaml'" in fake.calls[1][2]


def test_review_reports_failed_unit_tests() -> None:
    fake = FakePromtool(test_failures={"portal-requests-latency.test.yaml": "FAILED: boom"})

    (finding,) = review_slo_file("portal.yaml", yaml.safe_dump(SPEC), fake)

    assert (finding.rule, finding.object, finding.source) == (
        "promtool-test-rules",
        "portal-requests-latency.test.yaml",
        "portal.yaml",
    )
    assert finding.message.endswith("FAILED: boom")


def test_review_reports_one_finding_per_spec_error() -> None:
    spec = copy.deepcopy(SPEC)
    spec["slos"][0]["objective"] = 100
    spec["slos"][1]["sli"] = {}
    fake = FakePromtool()

    findings = review_slo_file("slo.yaml", yaml.safe_dump(spec, sort_keys=False), fake)

    assert [(f.rule, f.severity, f.object, f.path) for f in findings] == [
        ("slo-spec", Severity.ERROR, 'SLO "requests-availability"', "$.slos[0].objective"),
        ("slo-spec", Severity.ERROR, 'SLO "requests-latency"', "$.slos[1].sli"),
    ]
    assert findings[0].message.startswith('slo.yaml:8: SLO "requests-availability": objective:')
    assert fake.calls == []  # nothing generated, nothing run


def test_review_warns_about_slos_that_cannot_work() -> None:
    spec = copy.deepcopy(SPEC)
    spec["slos"][0]["objective"] = 80  # 6x a 20% budget: above 100% errors
    spec["slos"][1]["sli"]["events"]["total_query"] = "sum(rate(x[5m]))"
    spec["slos"][1]["alerting"]["name"] = spec["slos"][0]["alerting"]["name"]
    spec["slos"][1]["alerting"]["labels"] = spec["slos"][0]["alerting"]["labels"]

    findings = review_slo_file("slo.yaml", yaml.safe_dump(spec), None)

    assert [(f.rule, f.severity) for f in findings] == [
        ("slo-alert-unreachable", Severity.WARNING),
        ("slo-query-window", Severity.WARNING),
        ("slo-duplicate-alert", Severity.WARNING),
        ("slo-duplicate-alert", Severity.WARNING),
    ]
    assert "the page alert needs an error ratio above 1.2" in findings[0].message
