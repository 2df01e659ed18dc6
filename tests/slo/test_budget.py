"""Error-budget policies: loading, which policy applies, and the review check's verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.cost.model import Prices
from portal.integrations.kubernetes import Severity
from portal.review.checks import CheckStatus, CheckTools, run_manifest_checks
from portal.slo.budget import (
    BudgetPolicyError,
    crossed,
    evaluate_budget,
    load_policies,
    policy_for,
)

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "sre" / "error-budgets"
GOOD = REPO / "tests" / "review" / "manifests" / "good"


def test_the_repository_policies_load_and_the_platform_one_is_stricter() -> None:
    policies = load_policies(POLICIES)

    assert {policy.metadata.name for policy in policies} == {"default", "platform"}
    default, portal = policy_for(policies, "air-quality"), policy_for(policies, "portal")
    assert default is not None and default.metadata.name == "default"
    assert portal is not None and portal.metadata.name == "platform"
    assert [t.below for t in portal.spec.thresholds] == [0.1, 0.5]  # lowest first


@pytest.mark.parametrize(
    ("remaining", "severity", "text"),
    [
        (None, Severity.INFO, "no error-budget data"),
        (0.8, Severity.INFO, "80% of the error budget left: within policy default"),
        (0.2, Severity.WARNING, "below 25%"),
        (0.0, Severity.ERROR, "feature rollouts of this service are frozen"),
        (-0.5, Severity.ERROR, "-50% of the error budget left"),
    ],
)
def test_the_default_policy_verdicts(
    remaining: float | None, severity: Severity, text: str
) -> None:
    (finding,) = evaluate_budget(load_policies(POLICIES), "air-quality", remaining)

    assert finding.severity == severity
    assert text in finding.message
    assert finding.rule == "error-budget-default" and finding.object == "Component/air-quality"
    assert finding.source.endswith("default.yaml")


def test_thresholds_are_strict_except_an_exhausted_budget() -> None:
    (policy,) = [p for p in load_policies(POLICIES) if p.metadata.name == "platform"]
    assert crossed(policy, 0.1) is not None and crossed(policy, 0.1).action == "warn"  # type: ignore[union-attr]
    assert crossed(policy, 0.099) is not None and crossed(policy, 0.099).action == "freeze"  # type: ignore[union-attr]
    assert crossed(policy, 0.5) is None


def test_bad_policies_name_the_file_and_field(tmp_path: Path) -> None:
    assert load_policies(tmp_path / "missing") == []
    (tmp_path / "p.yaml").write_text(
        "apiVersion: portal.platform/v1\nkind: ErrorBudgetPolicy\nmetadata: {name: x}\n"
        "spec:\n  thresholds:\n    - {below: 0, action: panic, message: m}\n"
    )
    with pytest.raises(BudgetPolicyError, match=r"p\.yaml \(document 1\): spec\.thresholds\.0"):
        load_policies(tmp_path)
    (tmp_path / "p.yaml").write_text("kind: [")
    with pytest.raises(BudgetPolicyError, match="not valid YAML"):
        load_policies(tmp_path)


def test_the_review_check_freezes_a_service_whose_budget_is_spent(tmp_path: Path) -> None:
    service = tmp_path / "air-quality"
    service.mkdir()
    (service / "catalog-info.yaml").write_text((GOOD / "catalog-info.yaml").read_text())
    budgets = {"air-quality": -0.2}
    tools = CheckTools(
        budget_policies=lambda: load_policies(POLICIES), budget_remaining=budgets.get
    )

    results = {r.name: r for r in run_manifest_checks(service, [], lambda _: True, Prices(), tools)}

    assert results["error budget"].status == CheckStatus.FAILED
    assert "frozen" in results["error budget"].findings[0].message
    budgets["air-quality"] = 0.9
    again = {r.name: r for r in run_manifest_checks(service, [], lambda _: True, Prices(), tools)}
    assert again["error budget"].status == CheckStatus.PASSED


def test_a_broken_policy_file_is_a_check_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: [")
    tools = CheckTools(budget_policies=lambda: load_policies(tmp_path))

    results = {r.name: r for r in run_manifest_checks(GOOD, [], lambda _: True, Prices(), tools)}

    assert results["error budget"].status == CheckStatus.ERROR
    assert "bad.yaml" in results["error budget"].summary


def test_the_app_feeds_the_review_check_the_budgets_of_the_slo_pages(client: TestClient) -> None:
    app = client.app
    tools = app.state.scaffold.context.check_tools  # type: ignore[attr-defined]

    assert tools.budget_remaining == app.state.slo.budget_remaining  # type: ignore[attr-defined]
    assert tools.budget_policies is not None
    assert {policy.metadata.name for policy in tools.budget_policies()} == {"default", "platform"}
