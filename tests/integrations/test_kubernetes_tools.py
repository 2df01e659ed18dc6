"""The offline Kubernetes tools the checks use: kustomize builds and schema validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.integrations.kubernetes import (
    PINNED_KUBERNETES_VERSION,
    KubernetesToolError,
    Severity,
    kustomize_build,
    object_source,
)
from portal.integrations.kubernetes_schemas import validate_objects
from tests.review.test_checks import kubectl

__all__ = ["kubectl"]  # the fixture, used by name

# --- kustomize_build --------------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_kustomize_build_records_origin_and_leaves_the_service_untouched(
    kubectl: Path, tmp_path: Path
) -> None:
    overlay = tmp_path / "svc" / "deploy" / "overlays" / "dev"
    write(
        overlay / "kustomization.yaml",
        "resources: [cm.yaml]\nconfigMapGenerator:\n  - name: gen\n    literals: [SEP==]\n",
    )
    # kustomize prints the value "=" unquoted, which PyYAML's safe loader cannot read alone.
    write(
        overlay / "cm.yaml",
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: "="}\n',
    )
    before = sorted(tmp_path.rglob("*"))

    objects = kustomize_build(overlay, relative_to=tmp_path / "svc")

    by_name = {obj["metadata"]["name"]: obj for obj in objects}
    generated = next(name for name in by_name if name.startswith("gen-"))
    assert by_name["c"]["data"] == {"a": "="}
    assert by_name[generated]["data"] == {"SEP": "="}
    assert object_source(by_name["c"]) == "deploy/overlays/dev/cm.yaml"
    assert object_source(by_name[generated]) == "deploy/overlays/dev/kustomization.yaml"
    assert sorted(tmp_path.rglob("*")) == before


def test_kustomize_build_reports_kubectl_errors(kubectl: Path, tmp_path: Path) -> None:
    write(tmp_path / "kustomization.yaml", "resources: [missing.yaml]\n")

    with pytest.raises(KubernetesToolError, match=r"missing\.yaml"):
        kustomize_build(tmp_path)
    with pytest.raises(KubernetesToolError, match="is not a directory"):
        kustomize_build(tmp_path / "nope")


# --- validate_objects (no kubectl needed) --------------------------------------------------


def deployment(**container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "app", "image": "app:1", **container}]},
            },
        },
    }


def test_a_valid_deployment_has_no_findings_at_the_pinned_version() -> None:
    assert validate_objects([deployment()], PINNED_KUBERNETES_VERSION) == []


@pytest.mark.parametrize(
    ("api_version", "kind", "replacement"),
    [
        ("policy/v1beta1", "PodDisruptionBudget", "policy/v1"),
        ("autoscaling/v2beta2", "HorizontalPodAutoscaler", "autoscaling/v2"),
        ("extensions/v1beta1", "Ingress", "networking.k8s.io/v1"),
        ("batch/v1beta1", "CronJob", "batch/v1"),
        ("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", "flowcontrol.apiserver.k8s.io/v1"),
    ],
)
def test_removed_api_versions_are_errors(api_version: str, kind: str, replacement: str) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": {}}

    (finding,) = validate_objects([obj], source="deploy/overlays/dev")

    assert finding.severity == Severity.ERROR
    assert finding.rule == "api-removed"
    assert finding.message.endswith(f"use {replacement}")
    assert finding.source == "deploy/overlays/dev"


def test_removal_depends_on_the_pinned_version() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2beta2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 2},
    }

    assert [f.rule for f in validate_objects([hpa], "1.25")] == ["api-deprecated"]
    assert [f.rule for f in validate_objects([hpa], "1.26")] == ["api-removed"]
    with pytest.raises(KubernetesToolError, match=r"no schemas for Kubernetes 1\.99"):
        validate_objects([hpa], "1.99")


@pytest.mark.parametrize(
    ("api_version", "kind", "spec"),
    [
        ("networking.k8s.io/v1beta1", "ServiceCIDR", {"cidrs": ["10.0.0.0/16"]}),
        ("v1", "Endpoints", None),
    ],
)
def test_served_but_deprecated_api_versions_are_errors(
    api_version: str, kind: str, spec: dict[str, Any] | None
) -> None:
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    if spec is not None:
        obj["spec"] = spec

    (finding,) = validate_objects([obj])

    assert (finding.severity, finding.rule, finding.path) == (
        Severity.ERROR,
        "api-deprecated",
        "$.apiVersion",
    )


def test_strict_validation_reports_every_error_with_its_path() -> None:
    obj = deployment(imagePullPolicyy="Always", ports=[{"containerPort": "http"}])
    obj["spec"]["replicas"] = "2"

    found = {(f.path, f.message) for f in validate_objects([obj])}

    assert found == {
        ("$.spec.replicas", "'2' is not of type 'integer', 'null'"),
        ("$.spec.template.spec.containers[0].imagePullPolicyy", "unknown field 'imagePullPolicyy'"),
        (
            "$.spec.template.spec.containers[0].ports[0].containerPort",
            "'http' is not of type 'integer'",
        ),
    }


def flux_kustomization(api_version: str = "kustomize.toolkit.fluxcd.io/v1") -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "Kustomization",
        "metadata": {"name": "svc", "namespace": "flux-system"},
        "spec": {
            "interval": "10m",
            "path": "./services/svc/deploy/overlays/dev",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        },
    }


def test_custom_resources_validate_against_the_copied_schemas() -> None:
    good = flux_kustomization()
    misspelled_spec = flux_kustomization()
    misspelled_spec["sepc"] = misspelled_spec.pop("spec")
    old = flux_kustomization("kustomize.toolkit.fluxcd.io/v1beta2")
    unknown = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}}

    assert validate_objects([good]) == []
    assert [(f.rule, f.path) for f in validate_objects([misspelled_spec])] == [("schema", "$.sepc")]
    (version,) = validate_objects([old])
    assert (version.severity, version.rule) == (Severity.ERROR, "crd-version")
    assert "use kustomize.toolkit.fluxcd.io/v1" in version.message
    (warning,) = validate_objects([unknown])
    assert (warning.severity, warning.rule, warning.object) == (
        Severity.WARNING,
        "unknown-crd",
        "Certificate/c",
    )


def test_an_object_without_kind_is_a_finding_not_a_crash() -> None:
    (finding,) = validate_objects([{"metadata": {"name": "x"}}])

    assert (finding.rule, finding.object) == ("not-an-object", "?/x")
