"""The review checks that run external tools: checkov, the SLO rules with promtool, settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from portal.config import Settings
from portal.cost.model import Prices
from portal.integrations.checkov import CheckovFailure, FakeCheckov
from portal.integrations.checkov_warm import WarmCheckov
from portal.integrations.kubernetes import PINNED_KUBERNETES_VERSION, Severity
from portal.integrations.promtool import FakePromtool, PromtoolCli
from portal.review.checks import CheckStatus, CheckTools, run_manifest_checks
from portal.scaffold.runtime import MissingCheckov, MissingPromtool, check_tools
from tests.conftest import require_tool
from tests.review.test_checks import GOOD, kubectl, owner_exists, run

__all__ = ["kubectl"]  # the fixture, used by name


# --- checkov ----------------------------------------------------------------------------------


def test_checkov_runs_once_over_every_built_overlay_and_reports_per_object(kubectl: Path) -> None:
    fake = FakeCheckov(
        [
            CheckovFailure(
                "CKV_K8S_15",
                "Image Pull Policy should be Always",
                "prod.yaml",
                "Deployment.air-quality-prod.air-quality",
                ("spec/x", "spec/y"),
            ),
            CheckovFailure(
                "CKV_K8S_16",
                "Container should not be privileged",
                "dev.yaml",
                "Deployment.air-quality-dev.air-quality",
            ),
        ]
    )
    tools = CheckTools(checkov=fake, checkov_errors=frozenset({"CKV_K8S_16"}))

    results = run(GOOD, "dev", "prod", tools=tools)

    assert list(results)[-1] == "checkov"
    assert len(fake.scanned) == 1
    assert sorted(fake.scanned[0]) == ["dev.yaml", "prod.yaml"]
    scanned = list(yaml.safe_load_all(fake.scanned[0]["prod.yaml"]))
    assert {obj["kind"] for obj in scanned} >= {"Deployment", "Service"}
    check = results["checkov"]
    assert check.status == CheckStatus.FAILED
    by_rule = {finding.rule: finding for finding in check.findings}
    assert by_rule["CKV_K8S_16"].severity == Severity.ERROR
    assert by_rule["CKV_K8S_16"].object == "Deployment/air-quality-dev/air-quality"
    assert by_rule["CKV_K8S_16"].source == "deploy/overlays/dev"
    assert by_rule["CKV_K8S_15"].severity == Severity.WARNING
    assert by_rule["CKV_K8S_15"].path == "spec/y"
    assert check.summary.startswith("checkov on 12 objects of dev, prod: 1 error and 1 warning")


def test_checkov_advisory_findings_only_warn(kubectl: Path) -> None:
    fake = FakeCheckov([CheckovFailure("CKV_K8S_15", "Pull Always", "dev.yaml", "Deployment.a.b")])

    result = run(GOOD, tools=CheckTools(checkov=fake))["checkov"]

    assert result.status == CheckStatus.WARNING


def test_checkov_is_left_out_when_no_overlay_builds(tmp_path: Path) -> None:
    fake = FakeCheckov()

    results = run(GOOD, "../../..", tools=CheckTools(checkov=fake))

    assert "checkov" not in results
    assert fake.scanned == []


def test_missing_checkov_is_a_check_error_saying_how_to_install(kubectl: Path) -> None:
    result = run(GOOD, tools=CheckTools(checkov=MissingCheckov(None)))["checkov"]

    assert result.status == CheckStatus.ERROR
    assert "make tools" in result.summary


def test_settings_choose_the_real_checkov_or_say_it_is_missing(tmp_path: Path) -> None:
    executable = tmp_path / "checkov"
    executable.write_text("#!/bin/sh\n", encoding="utf-8")
    executable.chmod(0o755)

    found = check_tools(Settings(checkov_path=executable, checkov_skip_checks="A,B"))
    missing = check_tools(Settings(checkov_path=tmp_path / "none", checkov_error_checks="C"))

    # The review keeps checkov warm; its fallback is the plain command with the same skips.
    assert isinstance(found.checkov, WarmCheckov)
    assert found.checkov.cold.executable == executable
    assert found.checkov.cold.skip_checks == ("A", "B")
    assert isinstance(missing.checkov, MissingCheckov)
    assert missing.checkov_errors == {"C"}
    assert found.k8s_version == PINNED_KUBERNETES_VERSION
    assert check_tools(Settings(kubernetes_version="1.30")).k8s_version == "1.30"
    with pytest.raises(ValidationError, match="kubernetes_version"):
        Settings(kubernetes_version="v1.33")


def test_an_unknown_kubernetes_version_is_a_schema_check_error(kubectl: Path) -> None:
    result = run(GOOD, tools=CheckTools(k8s_version="1.99"))["schema (dev)"]

    assert result.status == CheckStatus.ERROR
    assert "no schemas for Kubernetes 1.99" in result.summary


# --- SLO rules (spec, promtool check rules, generated promtool unit tests) -------------------


def slo_service(tmp_path: Path, slo: str) -> Path:
    service = tmp_path / "svc"
    shutil.copytree(GOOD, service)
    (service / "slo.yaml").write_text(slo, encoding="utf-8")
    return service


def test_slo_rules_run_promtool_on_the_generated_rules_and_tests(tmp_path: Path) -> None:
    fake = FakePromtool()

    result = run_manifest_checks(GOOD, [], owner_exists, Prices(), CheckTools(promtool=fake))

    slo = {r.name: r for r in result}["slo rules"]
    assert slo.status == CheckStatus.PASSED, slo.findings
    actions = sorted((action, name.rsplit(".", 2)[-2]) for action, name, _ in fake.calls)
    assert actions == [("check", "rules"), ("test", "test")]
    rules_text = next(text for action, _, text in fake.calls if action == "check")
    assert "slo:sli_error:ratio_rate5m" in rules_text and "AirQualityHighErrorRate" in rules_text


def test_a_bad_slo_spec_is_an_error_naming_the_slo_and_field(tmp_path: Path) -> None:
    text = (GOOD / "slo.yaml").read_text().replace("objective: 99.5", "objective: 100")
    service = slo_service(tmp_path, text)

    result = run_manifest_checks(service, [], owner_exists, Prices(), CheckTools())
    slo = {r.name: r for r in result}["slo rules"]

    assert slo.status == CheckStatus.FAILED
    (finding,) = slo.findings
    assert finding.rule == "slo-spec" and "requests-availability" in finding.message
    assert "objective" in finding.message


def test_promtool_failures_and_a_missing_promtool(tmp_path: Path) -> None:
    failing = FakePromtool(check_failures={"air-quality.rules.yaml": "bad rule"})
    checks = run_manifest_checks(GOOD, [], owner_exists, Prices(), CheckTools(promtool=failing))
    slo = {r.name: r for r in checks}["slo rules"]
    assert slo.status == CheckStatus.FAILED
    assert slo.findings[0].rule == "promtool-check-rules" and "bad rule" in slo.findings[0].message

    missing = MissingPromtool("promtool not found (apt-get install prometheus)")
    checks = run_manifest_checks(GOOD, [], owner_exists, Prices(), CheckTools(promtool=missing))
    slo = {r.name: r for r in checks}["slo rules"]
    assert slo.status == CheckStatus.ERROR and "apt-get install prometheus" in slo.summary


def test_a_promtool_that_is_not_installed_is_a_clean_error_finding(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tools = check_tools(Settings(promtool_path=tmp_path / "no-promtool"))

    with caplog.at_level("DEBUG"):
        checks = run_manifest_checks(GOOD, [], owner_exists, Prices(), tools)

    slo = {r.name: r for r in checks}["slo rules"]
    assert slo.status == CheckStatus.ERROR  # never a pass: the rules were not checked
    (finding,) = slo.findings
    assert (finding.severity, finding.rule, finding.source) == (
        Severity.ERROR,
        "promtool-missing",
        "slo.yaml",
    )
    assert "no-promtool" in finding.message and "apt-get install prometheus" in finding.message
    assert "not checked" in slo.summary and "apt-get install prometheus" in slo.summary
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"


@pytest.mark.integration
def test_real_promtool_passes_the_good_service_and_catches_a_bad_query(tmp_path: Path) -> None:
    tools = CheckTools(promtool=PromtoolCli(require_tool("promtool")))
    good = {r.name: r for r in run_manifest_checks(GOOD, [], owner_exists, Prices(), tools)}
    assert good["slo rules"].status == CheckStatus.PASSED, good["slo rules"].findings

    text = (GOOD / "slo.yaml").read_text().replace('code=~"5.."}', 'code=~"5.."')
    bad_service = slo_service(tmp_path, text)
    bad = {r.name: r for r in run_manifest_checks(bad_service, [], owner_exists, Prices(), tools)}
    assert bad["slo rules"].status == CheckStatus.FAILED
    assert bad["slo rules"].findings[0].rule == "promtool-check-rules"
