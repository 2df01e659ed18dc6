"""The ``slo rules shipped`` check: the committed PrometheusRule is what slo.yaml generates."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations.kubernetes import kustomize_build
from portal.integrations.kubernetes_schemas import validate_objects
from portal.review.checks import CheckStatus
from portal.review.slo_rules_shipped import (
    KUSTOMIZATION_FILE,
    RULE_FILE,
    RULE_NAME,
    lists_rule,
    shipped_rule,
    shipped_rules_outcome,
    with_rule_listed,
)
from portal.slo.compiler.errors import InvalidSpecError
from portal.slo.compiler.generate import GenerateOptions, OutputFormat, generate
from tests.conftest import require_tool
from tests.review.test_checks import GOOD, run

SERVICE = "air-quality"


@pytest.fixture
def service(tmp_path: Path) -> Path:
    """The good fixture service as the check stage exports it: ``services/air-quality``."""
    folder = tmp_path / "services" / SERVICE
    shutil.copytree(GOOD, folder)
    return folder


def shipped(service: Path) -> tuple[CheckStatus, str, list[str]]:
    result = run(service, "dev")["slo rules shipped"]
    return result.status, result.summary, [finding.message for finding in result.findings]


def promtool_accepts(rule: dict[str, Any], tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    groups = tmp_path / "groups.yaml"
    groups.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = subprocess.run(
        [str(promtool), "check", "rules", "--", str(groups)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rule_is_the_compilers_operator_output_of_the_spec() -> None:
    # The same generator as `portal slo generate --format operator slo.yaml`.
    (expected,) = generate([GOOD / "slo.yaml"], GenerateOptions(format=OutputFormat.OPERATOR))
    assert shipped_rule((GOOD / "slo.yaml").read_text(), SERVICE) == expected.text
    rule = yaml.safe_load(expected.text)
    assert rule["kind"] == "PrometheusRule" and rule["metadata"]["name"] == "air-quality-slos"
    assert validate_objects([rule]) == []


def test_a_committed_rule_equal_to_the_generated_one_passes(service: Path) -> None:
    status, summary, messages = shipped(service)
    assert (status, messages) == (CheckStatus.PASSED, [])
    assert summary == f"{RULE_FILE} against slo.yaml: no problems"


def test_a_hand_edited_rule_fails_naming_the_file_and_line(service: Path) -> None:
    rule = service / RULE_FILE
    lines = rule.read_text().splitlines(keepends=True)
    # Someone turns the page into a ticket by hand.
    changed = next(i for i, line in enumerate(lines) if line.strip() == "severity: 'page'")
    lines[changed] = lines[changed].replace("'page'", "'ticket'")
    rule.write_text("".join(lines))

    status, _summary, messages = shipped(service)

    assert status == CheckStatus.FAILED
    (message,) = messages
    assert message.startswith(f"services/{SERVICE}/{RULE_FILE}: differs from the rules")
    assert f"first at line {changed + 1}" in message


def test_a_spec_edited_without_its_rule_fails(service: Path) -> None:
    spec = service / "slo.yaml"
    spec.write_text(spec.read_text().replace("objective: 99.5", "objective: 99.9"))
    status, _summary, messages = shipped(service)
    assert (
        status == CheckStatus.FAILED
        and "differs from the rules slo.yaml generates" in (messages[0])
    )
    # Regenerated, it passes again.
    (service / RULE_FILE).write_text(shipped_rule(spec.read_text(), SERVICE))
    assert shipped(service)[0] == CheckStatus.PASSED


def test_a_missing_or_unlisted_rule_fails(service: Path) -> None:
    kustomization = service / KUSTOMIZATION_FILE
    kustomization.write_text(kustomization.read_text().replace(f"  - {RULE_NAME}\n", ""))
    (service / RULE_FILE).unlink()

    status, _summary, messages = shipped(service)

    assert status == CheckStatus.FAILED
    assert [message.split(":")[0] for message in messages] == [
        f"services/{SERVICE}/{KUSTOMIZATION_FILE}",
        f"services/{SERVICE}/{RULE_FILE}",
    ]
    assert f"does not list {RULE_NAME}" in messages[0] and "is missing" in messages[1]


def test_a_rule_without_a_spec_fails_and_no_spec_no_rule_is_no_check(service: Path) -> None:
    (service / "slo.yaml").unlink()
    status, _summary, messages = shipped(service)
    assert status == CheckStatus.FAILED
    assert "there is no slo.yaml to generate it from" in messages[0]

    (service / RULE_FILE).unlink()
    assert "slo rules shipped" not in run(service, "dev")


def test_a_spec_that_does_not_compile_is_an_error_never_a_pass(service: Path) -> None:
    spec = service / "slo.yaml"
    spec.write_text(spec.read_text().replace("objective: 99.5", "objective: 100"))
    status, summary, _messages = shipped(service)
    assert status == CheckStatus.ERROR
    assert "slo.yaml does not compile" in summary
    with pytest.raises(InvalidSpecError, match=f"services/{SERVICE}/slo.yaml"):
        shipped_rule(spec.read_text(), SERVICE)


def test_a_service_that_deploys_nothing_gets_no_such_check(service: Path) -> None:
    assert "slo rules shipped" not in run(service, "dev", deploys=False)
    assert shipped_rules_outcome(service).findings == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "resources:\n  - a.yaml # why\n\n# about b\nconfigMapGenerator:\n  - name: b\n",
            "resources:\n  - a.yaml # why\n  - slo-rules.yaml\n\n# about b\n"
            "configMapGenerator:\n  - name: b\n",
        ),
        ("resources:\n- a.yaml", "resources:\n- a.yaml\n- slo-rules.yaml\n"),
        ("kind: Kustomization\n", "kind: Kustomization\nresources:\n  - slo-rules.yaml\n"),
        ("resources: [a.yaml]\n", "resources:\n- a.yaml\n- slo-rules.yaml\n"),
    ],
)
def test_the_kustomization_gets_one_more_resource_and_keeps_its_comments(
    before: str, after: str
) -> None:
    assert not lists_rule(before)
    assert with_rule_listed(before) == after
    assert lists_rule(after) and with_rule_listed(after) == after


def test_a_kustomization_that_is_not_one_is_named() -> None:
    with pytest.raises(ValueError, match=r"services/x/deploy/base/kustomization\.yaml"):
        with_rule_listed("- a\n", "services/x/deploy/base/kustomization.yaml")


def test_the_overlay_build_applies_the_rule_and_promtool_accepts_its_groups(
    service: Path, tmp_path: Path
) -> None:
    kubectl = require_tool("kubectl")
    objects = kustomize_build(service / "deploy" / "overlays" / "prod", kubectl=kubectl)
    (rule,) = [obj for obj in objects if obj["kind"] == "PrometheusRule"]
    assert rule["metadata"]["name"] == "air-quality-slos"
    assert validate_objects([rule]) == []
    promtool_accepts(rule, tmp_path)
