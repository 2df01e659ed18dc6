"""Policy rules on rendered objects and on a service's catalog-info.yaml and slo.yaml."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from portal.integrations.kubernetes import Finding
from portal.review.policy import (
    RULES,
    evaluate_objects,
    evaluate_policy,
    evaluate_service_files,
    image_problem,
)

GOOD = Path(__file__).parent / "manifests" / "good"

CONTAINER: dict[str, Any] = {
    "name": "app",
    "image": "ghcr.io/example/app:1.2.3",
    "resources": {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "200m", "memory": "256Mi"},
    },
    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8000}},
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8000}},
}


def workload(kind: str = "Deployment", **pod: Any) -> dict[str, Any]:
    pod_spec = {
        "securityContext": {"runAsNonRoot": True},
        "containers": [copy.deepcopy(CONTAINER)],
        **pod,
    }
    template = {"metadata": {"labels": {"app": "api"}}, "spec": pod_spec}
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "api"}}, "template": template}
    if kind == "CronJob":
        spec = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}
    return {
        "apiVersion": "batch/v1" if kind == "CronJob" else "apps/v1",
        "kind": kind,
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": spec,
    }


def container_of(obj: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return container


def rules(findings: list[Finding]) -> list[str]:
    return [finding.rule for finding in findings]


def test_a_compliant_workload_has_no_findings() -> None:
    assert evaluate_objects([workload(), workload("StatefulSet")]) == []


def test_every_finding_carries_its_rule_reason_and_severity() -> None:
    obj = workload()
    del container_of(obj)["resources"]["limits"]

    (finding,) = evaluate_objects([obj])

    assert finding.rule == "resources-set"
    assert finding.reason == RULES["resources-set"].reason
    assert finding.severity == RULES["resources-set"].severity
    assert finding.object == "Deployment/shop/api"
    assert finding.path == "$.spec.template.spec.containers[0].resources"
    assert finding.message == "container 'app' sets no limits.cpu, limits.memory"


@pytest.mark.parametrize(
    ("kind", "field", "missing"),
    [
        ("requests", "cpu", "requests.cpu"),
        ("requests", "memory", "requests.memory"),
        ("limits", "memory", "limits.memory"),
    ],
)
def test_requests_and_limits_each_required(kind: str, field: str, missing: str) -> None:
    obj = workload()
    del container_of(obj)["resources"][kind][field]

    (finding,) = evaluate_objects([obj])

    assert finding.message == f"container 'app' sets no {missing}"


def test_init_containers_need_resources_too_but_no_probes() -> None:
    init = {"name": "migrate", "image": "app:1.2.3", "resources": CONTAINER["resources"]}
    unbounded = {"name": "warmup", "image": "app:1.2.3"}

    findings = evaluate_objects([workload(initContainers=[init, unbounded])])

    assert rules(findings) == ["resources-set"]
    assert findings[0].path == "$.spec.template.spec.initContainers[1].resources"


def test_probes_required_on_serving_workloads_only() -> None:
    obj = workload()
    del container_of(obj)["readinessProbe"]
    cronjob = workload("CronJob")
    job_container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    del job_container["livenessProbe"], job_container["readinessProbe"]

    (finding,) = evaluate_objects([obj, cronjob])

    assert finding.rule == "probes-set"
    assert finding.message == "container 'app' has no readinessProbe"


def test_cronjob_containers_are_found_under_the_job_template() -> None:
    cronjob = workload("CronJob")
    job_container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    job_container["image"] = "app:latest"

    (finding,) = evaluate_objects([cronjob])

    assert finding.path == "$.spec.jobTemplate.spec.template.spec.containers[0].image"


@pytest.mark.parametrize(
    ("pod_level", "container_level", "violates"),
    [
        (True, None, False),
        (None, True, False),
        (True, False, True),  # the container's setting wins over the pod's
        (False, True, False),
        (None, None, True),
        (False, None, True),
    ],
)
def test_run_as_non_root_at_pod_or_container_level(
    pod_level: bool | None, container_level: bool | None, violates: bool
) -> None:
    obj = workload(securityContext={} if pod_level is None else {"runAsNonRoot": pod_level})
    if container_level is not None:
        container_of(obj)["securityContext"] = {"runAsNonRoot": container_level}

    assert rules(evaluate_objects([obj])) == (["run-as-non-root"] if violates else [])


def test_run_as_user_zero_contradicts_run_as_non_root() -> None:
    obj = workload(securityContext={"runAsNonRoot": True, "runAsUser": 0})

    (finding,) = evaluate_objects([obj])

    assert finding.path.endswith("securityContext.runAsUser")


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("nginx", "has no tag"),
        ("nginx:latest", "uses the latest tag"),
        ("ghcr.io/example/app:Latest", "uses the latest tag"),
        ("registry.local:5000/app", "has no tag"),
        ("", "has no image"),
        (None, "has no image"),
        ("registry.local:5000/app:1.2", None),
        ("app@sha256:" + "a" * 64, None),
        ("app:latest@sha256:" + "a" * 64, None),  # the digest pins what is pulled
    ],
)
def test_image_must_be_pinned(image: str | None, problem: str | None) -> None:
    found = image_problem(image)

    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


@pytest.mark.parametrize(
    ("env", "violates"),
    [
        ({"name": "DB_PASSWORD", "value": "hunter2"}, True),
        ({"name": "GITHUB_TOKEN", "value": "ghp_x1"}, True),
        ({"name": "api_key", "value": "k-123"}, True),
        ({"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalr"}, True),
        ({"name": "OPENAI_APIKEY", "value": "sk-42"}, True),
        ({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "p"}}}, False),
        ({"name": "DB_PASSWORD", "value": ""}, False),
        ({"name": "TOKENIZER_NAME", "value": "bert-base"}, False),
        ({"name": "MAX_TOKENS", "value": "512"}, False),
        ({"name": "LOG_LEVEL", "value": "info"}, False),
    ],
)
def test_secret_looking_env_vars_need_value_from(env: dict[str, Any], violates: bool) -> None:
    obj = workload()
    container_of(obj)["env"] = [{"name": "LOG_LEVEL", "value": "debug"}, env]

    findings = evaluate_objects([obj])

    assert rules(findings) == (["no-secret-env-value"] if violates else [])
    if violates:
        assert findings[0].path == "$.spec.template.spec.containers[0].env[1].value"
        assert str(env.get("value")) not in findings[0].message


def test_secret_objects_with_data_are_refused() -> None:
    def secret(**data: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, **data}

    findings = evaluate_objects(
        [secret(data={"p": "aHVudGVyMg=="}), secret(stringData={"p": "x"}), secret()]
    )

    assert [(f.rule, f.path) for f in findings] == [
        ("no-secret-object", "$.data"),
        ("no-secret-object", "$.stringData"),
    ]


def hpa(namespace: str = "shop", target: str = "api") -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 2,
            "maxReplicas": 5,
        },
    }


def test_workload_scaled_by_an_hpa_must_not_set_replicas() -> None:
    obj = workload()
    obj["spec"]["replicas"] = 3

    assert rules(evaluate_objects([obj, hpa()])) == ["hpa-no-replicas"]
    assert rules(evaluate_objects([obj, hpa(namespace="other")])) == []
    assert rules(evaluate_objects([obj, hpa(target="web")])) == []
    assert rules(evaluate_objects([obj])) == []


# --- service files ------------------------------------------------------------------------


def test_good_service_files_pass() -> None:
    findings = evaluate_service_files(
        owner_exists={"group:team-air"}.__contains__,
        catalog_info=GOOD / "catalog-info.yaml",
        slo=GOOD / "slo.yaml",
    )

    assert findings == []


def test_owner_must_exist_in_the_catalog() -> None:
    asked: list[str] = []

    def owner_exists(ref: str) -> bool:
        asked.append(ref)
        return False

    (finding,) = evaluate_service_files(
        owner_exists=owner_exists, catalog_info=GOOD / "catalog-info.yaml"
    )

    assert asked == ["group:team-air"]
    assert finding.rule == "owner-exists"
    assert finding.object == "Component/air-quality"
    assert finding.source == "catalog-info.yaml"
    assert finding.path == "$.spec.owner"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_catalog_info_problems_name_the_file(tmp_path: Path) -> None:
    def message(path: Path) -> str:
        (finding,) = evaluate_service_files(owner_exists=lambda ref: True, catalog_info=path)
        return finding.message

    assert message(tmp_path / "catalog-info.yaml") == "catalog-info.yaml is missing"
    no_owner = write(tmp_path / "a.yaml", "kind: Component\nmetadata: {name: x}\nspec: {}\n")
    assert message(no_owner) == "a.yaml declares no spec.owner"
    broken = write(tmp_path / "b.yaml", "kind: Component\nspec:\n  owner: [x\n")
    assert message(broken).startswith("b.yaml line 4 is not valid YAML")


@pytest.mark.parametrize(
    ("text", "declared"),
    [
        ("version: prometheus/v1\nservice: s\nslos: []\n", False),
        ("version: prometheus/v1\nservice: s\nslos:\n  - name: a\n", False),
        ("version: prometheus/v1\nservice: s\nslos:\n  - {name: a, objective: 99.9}\n", True),
        (
            "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\n"
            "spec:\n  slos:\n    - {name: a, objective: 99}\n",
            True,
        ),
        ("---\n# nothing\n", False),
    ],
)
def test_an_slo_must_be_declared(tmp_path: Path, text: str, declared: bool) -> None:
    slo = write(tmp_path / "slo.yaml", text)

    findings = evaluate_service_files(owner_exists=lambda ref: True, slo=slo)

    assert rules(findings) == ([] if declared else ["slo-declared"])


def test_missing_slo_file_is_a_finding(tmp_path: Path) -> None:
    (finding,) = evaluate_service_files(owner_exists=lambda ref: True, slo=tmp_path / "slo.yaml")

    assert (finding.rule, finding.message) == ("slo-declared", "slo.yaml is missing")


def test_evaluate_policy_combines_object_and_service_rules(tmp_path: Path) -> None:
    obj = workload()
    container_of(obj)["image"] = "app"

    findings = evaluate_policy(
        [obj],
        owner_exists=lambda ref: True,
        catalog_info=GOOD / "catalog-info.yaml",
        slo=tmp_path / "slo.yaml",
    )

    assert rules(findings) == ["image-pinned", "slo-declared"]
