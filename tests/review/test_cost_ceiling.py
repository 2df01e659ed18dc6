"""An absurd estimate fails the cost check; an estimate that cannot be made is an error."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from portal.config import Settings
from portal.cost.manifests import (
    DEFAULT_MAX_MONTHLY,
    ceiling_findings,
    estimate_monthly_cost,
    money,
)
from portal.cost.model import Prices
from portal.review.checks import CheckResult, CheckStatus, CheckTools, run_manifest_checks
from portal.scaffold.runtime import check_tools
from tests.conftest import require_tool
from tests.review.test_checks import GOOD, owner_exists

ABSURD = "99999999999999999999999999Gi"  # issue 10, finding 13


@pytest.fixture
def kubectl() -> Path:
    return require_tool("kubectl")


def deployment(memory: str, replicas: object = 1) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "registry.example.com/app:1.0.0",
        "resources": {"requests": {"cpu": "100m", "memory": memory}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "shop"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {"containers": [container]},
            },
        },
    }


def service(tmp_path: Path, memory: str) -> Path:
    overlay = tmp_path / "shop" / "deploy" / "overlays" / "dev"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    (overlay / "deployment.yaml").write_text(yaml.safe_dump(deployment(memory)))
    return tmp_path / "shop"


def cost_check(service_dir: Path, tools: CheckTools | None = None) -> CheckResult:
    results = run_manifest_checks(service_dir, ["dev"], owner_exists, Prices(), tools)
    return next(result for result in results if result.name == "cost (dev)")


def test_an_absurd_memory_request_fails_naming_the_figure_and_the_ceiling(
    tmp_path: Path, kubectl: Path
) -> None:
    result = cost_check(service(tmp_path, ABSURD))

    assert result.status == CheckStatus.FAILED
    # (1e26 - 1) GiB x 0.004237 USD per GiB-hour x 730 h, plus 0.1 core
    assert result.summary == (
        "estimated 3.09e+26 USD/month, above the ceiling of 100000.00 USD/month"
    )
    (ceiling,) = [finding for finding in result.findings if finding.severity == "error"]
    assert ceiling.rule == "cost-ceiling"
    assert ceiling.object == "Deployment/shop/app"
    assert ceiling.source == "deploy/overlays/dev/deployment.yaml"
    assert ceiling.message == (
        "estimated 3.09e+26 USD/month is above the ceiling of 100000.00 USD/month "
        "(PORTAL_COST_MAX_MONTHLY_USD); the largest workload is Deployment/shop/app at 3.09e+26"
    )


def test_a_quantity_that_cannot_be_priced_is_an_error_not_a_pass(
    tmp_path: Path, kubectl: Path
) -> None:
    result = cost_check(service(tmp_path, "lots"))

    assert result.status == CheckStatus.ERROR
    assert result.summary == (
        "cannot estimate the cost of Deployment/shop/app: invalid quantity 'lots'"
    )


def test_the_ceiling_is_configurable(kubectl: Path) -> None:
    strict = cost_check(GOOD, CheckTools(max_monthly_cost=Decimal(1)))
    default = cost_check(GOOD)

    assert strict.status == CheckStatus.FAILED
    assert "above the ceiling of 1.00 USD/month" in strict.summary
    assert default.status == CheckStatus.PASSED


def test_the_setting_reaches_the_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_COST_MAX_MONTHLY_USD", "2500")

    settings = Settings(_env_file=None)

    assert settings.cost_max_monthly_usd == 2500
    assert check_tools(settings).max_monthly_cost == Decimal(2500)
    assert Settings(_env_file=None, cost_max_monthly_usd=1).cost_max_monthly_usd == 1
    assert CheckTools().max_monthly_cost == DEFAULT_MAX_MONTHLY == Decimal(100_000)


@pytest.mark.parametrize("value", ["0", "-5", "inf", "nan", "lots"])
def test_a_ceiling_that_bounds_nothing_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PORTAL_COST_MAX_MONTHLY_USD", value)

    with pytest.raises(ValidationError, match="cost_max_monthly_usd"):
        Settings(_env_file=None)


def test_at_the_ceiling_is_still_a_pass_and_the_maximum_counts() -> None:
    objects = [deployment("1Gi")]
    estimate = estimate_monthly_cost(objects, Prices())
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "app", "namespace": "shop"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "app"},
            "minReplicas": 1,
            "maxReplicas": 10,
        },
    }
    scaled = estimate_monthly_cost([*objects, hpa], Prices())

    assert ceiling_findings(estimate, estimate.total) == []
    assert len(ceiling_findings(estimate, estimate.total - Decimal("0.01"))) == 1
    # Priced at its minimum it fits; the autoscaler's maximum does not.
    (finding,) = ceiling_findings(scaled, scaled.total * 2)
    assert "(up to " in finding.message and "at autoscaler maximum)" in finding.message


@pytest.mark.parametrize(
    ("memory", "replicas", "error"),
    [
        ("-1Gi", 1, "negative memory quantity '-1Gi'"),
        ("1Gi", -3, "replicas -3 is negative"),
        ("1Gi", 2.5, "replicas 2.5 is not a whole number"),
        ("1e99999999999", 1, "Deployment/shop/app: "),
    ],
)
def test_workloads_that_cannot_be_priced_are_listed_as_errors(
    memory: str, replicas: object, error: str
) -> None:
    estimate = estimate_monthly_cost([deployment(memory, replicas)], Prices())

    assert estimate.lines == []
    assert len(estimate.errors) == 1 and error in estimate.errors[0]
    assert "Cannot estimate: Deployment/shop/app" in estimate.breakdown()


def test_astronomical_amounts_are_written_readably() -> None:
    estimate = estimate_monthly_cost([deployment(ABSURD)], Prices())

    assert money(Decimal("43.893075")) == "43.89"
    assert money(estimate.total) == "3.09e+26"
    assert "Total: " in estimate.breakdown()  # once raised InvalidOperation past 28 digits
