"""The check runner end to end on fixture services, plus the kustomize and schema layer."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from portal.cost.model import Prices
from portal.integrations.kubernetes import (
    Severity,
)
from portal.review import cost_check
from portal.review.checks import CheckResult, CheckStatus, CheckTools, run_manifest_checks
from tests.conftest import require_tool

MANIFESTS = Path(__file__).parent / "manifests"
GOOD = MANIFESTS / "good"
BAD = MANIFESTS / "bad"


@pytest.fixture
def kubectl() -> Path:
    return require_tool("kubectl")


def owner_exists(ref: str) -> bool:
    return ref == "group:team-air"


def run(service_dir: Path, *environments: str, **options: Any) -> dict[str, CheckResult]:
    results = run_manifest_checks(
        service_dir, environments or ("dev",), owner_exists, Prices(), **options
    )
    return {result.name: result for result in results}


def problems(result: CheckResult) -> list[str]:
    return [f"{f.rule} {f.object} {f.path}" for f in result.findings if f.severity != "info"]


# --- the runner on fixture services ---------------------------------------------------------


def test_good_service_passes_every_check_in_every_environment(kubectl: Path) -> None:
    results = run(GOOD, "dev", "prod")

    assert list(results) == [
        "policy",
        "slo rules",
        "slo rules shipped",
        "semantics",
        "kustomize (dev)",
        "schema (dev)",
        "policy (dev)",
        "cost (dev)",
        "semantics (dev)",
        "kustomize (prod)",
        "schema (prod)",
        "policy (prod)",
        "cost (prod)",
        "semantics (prod)",
    ]
    for name, result in results.items():
        assert result.status == CheckStatus.PASSED, (name, result.summary, problems(result))
        assert problems(result) == []
    assert results["kustomize (prod)"].summary == "6 objects rendered from deploy/overlays/prod"


def test_good_service_cost_uses_hpa_minimum_per_environment(kubectl: Path) -> None:
    results = run(GOOD, "dev", "prod")
    dev, prod = results["cost (dev)"].cost, results["cost (prod)"].cost
    assert dev is not None
    assert prod is not None

    # Default sheet: 0.031611 per core-hour, 0.004237 per GiB-hour, 730 hours.
    # dev: HPA min 1 (max 3) x (0.25 core, 256Mi = 0.25 GiB):
    #   0.25 x 0.031611 + 0.25 x 0.004237 = 0.008962 per hour; x 730 = 6.54226
    assert dev.total == Decimal("6.54226")
    assert dev.max_total == Decimal("19.62678")
    # prod patches min 3 (max 10) and 0.5 core, 1Gi:
    #   0.5 x 0.031611 + 1 x 0.004237 = 0.0200425 per hour; x 3 x 730 = 43.893075
    assert prod.total == Decimal("43.893075")
    assert prod.max_total == Decimal("146.31025")
    assert results["cost (prod)"].summary == (
        "estimated 43.89 USD/month (up to 146.31 at autoscaler maximum)"
    )
    assert [line.object for line in prod.lines] == ["Deployment/air-quality-prod/air-quality"]


BAD_VARIANTS = [
    ("deprecated-api", "schema (dev)", ["api-removed"] * 3),
    ("missing-limits", "policy (dev)", ["resources-set"]),
    ("latest-tag", "policy (dev)", ["image-pinned"]),
    ("secret-env", "policy (dev)", ["no-secret-env-value"]),
    ("secret-object", "policy (dev)", ["no-secret-object"]),
    ("hpa-replicas", "policy (dev)", ["hpa-no-replicas"]),
    ("flux-typo", "schema (dev)", ["schema"]),
    ("servicemonitor-type", "schema (dev)", ["schema"]),
    ("run-as-root", "policy (dev)", ["run-as-non-root"]),
]


@pytest.mark.parametrize(("variant", "failing", "rules"), BAD_VARIANTS)
def test_each_bad_variant_fails_exactly_its_check(
    kubectl: Path, variant: str, failing: str, rules: list[str]
) -> None:
    results = run(BAD / variant)

    for name in ("kustomize (dev)", "schema (dev)", "policy (dev)", "cost (dev)"):
        expected = CheckStatus.FAILED if name == failing else CheckStatus.PASSED
        assert results[name].status == expected, (name, problems(results[name]))
    found = [f.rule for f in results[failing].findings if f.severity == Severity.ERROR]
    assert found == rules


def test_removed_api_versions_name_their_replacement(kubectl: Path) -> None:
    messages = [f.message for f in run(BAD / "deprecated-api")["schema (dev)"].findings]

    assert messages == [
        "policy/v1beta1 PodDisruptionBudget is not served by Kubernetes 1.33; use policy/v1",
        "autoscaling/v2beta2 HorizontalPodAutoscaler is not served by Kubernetes 1.33; "
        "use autoscaling/v2",
        "extensions/v1beta1 Ingress is not served by Kubernetes 1.33; use networking.k8s.io/v1",
    ]


def test_findings_name_object_field_and_source_file(kubectl: Path) -> None:
    (typo,) = run(BAD / "flux-typo")["schema (dev)"].findings
    (interval,) = run(BAD / "servicemonitor-type")["schema (dev)"].findings
    (secret,) = run(BAD / "secret-env")["policy (dev)"].findings

    assert typo.object == "Kustomization/air-quality-extras"
    assert typo.source == "deploy/overlays/dev/flux.yaml"
    assert typo.path == "$.spec.targetNamespce"
    assert interval.object == "ServiceMonitor/air-quality-dev/air-quality"
    assert interval.source == "../../good/deploy/base/servicemonitor.yaml"
    assert interval.path == "$.spec.endpoints[0].interval"
    assert "not of type 'string'" in interval.message
    assert secret.path == "$.spec.template.spec.containers[0].env[2].value"
    assert "WEATHER_API_TOKEN" in secret.message
    assert "s3cr3t" not in secret.message
    assert secret.reason


def test_remote_base_is_refused_without_network(kubectl: Path) -> None:
    results = run(BAD / "remote-base")

    build = results["kustomize (dev)"]
    assert build.status == CheckStatus.FAILED
    assert "remote bases and URLs are not fetched" in build.findings[0].message
    assert "schema (dev)" not in results


def test_missing_overlay_fails_the_build_and_skips_dependent_checks(tmp_path: Path) -> None:
    results = run(GOOD, "staging")

    assert results["kustomize (staging)"].status == CheckStatus.FAILED
    assert results["kustomize (staging)"].findings[0].message == (
        "deploy/overlays/staging is missing: every environment needs an overlay"
    )
    assert list(results) == [
        "policy",
        "slo rules",
        "slo rules shipped",
        "semantics",
        "kustomize (staging)",
    ]


def test_environment_names_cannot_escape_the_overlays_folder() -> None:
    results = run(GOOD, "../../..")

    assert "not a valid environment name" in results["kustomize (../../..)"].findings[0].message


def test_missing_kubectl_is_a_check_error_not_a_manifest_failure(tmp_path: Path) -> None:
    results = run(GOOD, tools=CheckTools(kubectl=tmp_path / "no-kubectl"))

    assert results["kustomize (dev)"].status == CheckStatus.ERROR
    assert "no-kubectl" in results["kustomize (dev)"].summary
    assert results["policy"].status == CheckStatus.PASSED


def test_a_crashing_check_is_reported_and_the_others_still_run(
    kubectl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("price sheet exploded")

    def owner_lookup_down(ref: str) -> bool:
        raise ConnectionError("catalog unavailable")

    monkeypatch.setattr(cost_check, "estimate_monthly_cost", broken)
    results = {
        result.name: result
        for result in run_manifest_checks(GOOD, ["dev"], owner_lookup_down, Prices())
    }

    assert results["cost (dev)"].status == CheckStatus.ERROR
    assert results["cost (dev)"].summary == (
        "the check could not run: ZeroDivisionError: price sheet exploded"
    )
    assert results["policy"].status == CheckStatus.ERROR
    assert "catalog unavailable" in results["policy"].summary
    assert results["schema (dev)"].status == CheckStatus.PASSED
    assert results["policy (dev)"].status == CheckStatus.PASSED


def test_results_serialize_to_json_for_storage(kubectl: Path) -> None:
    data = run(GOOD)["cost (dev)"].model_dump(mode="json")

    assert data["status"] == "passed"
    assert data["findings"][0]["severity"] == "info"
    assert Decimal(data["cost"]["total"]) == Decimal("6.54226")
