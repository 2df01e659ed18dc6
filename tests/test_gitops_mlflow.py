"""The cluster's MLflow (gitops-repo/infrastructure/base/mlflow) and the services that use it.

The folder passes the review checks a service's manifests get (kustomize, schemas,
policy, cost, semantics; checkov beyond the waived findings), runs the MLflow version
``make tools`` pins, takes every credential from a Secret reference, proxies the
artifacts, answers the Host the generated services use, and admits their namespaces.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.cost.model import Prices
from portal.integrations.checkov import CheckovCli
from portal.integrations.kubernetes import kustomize_build
from portal.review.checks import CheckStatus, CheckTools, run_manifest_checks
from tests.conftest import REPO, require_tool

MLFLOW = REPO / "gitops-repo" / "infrastructure" / "base" / "mlflow"
ENVIRONMENT = "dev"
# The service-level policy check reads a service's catalog-info.yaml and slo.yaml, which
# shared infrastructure has not.
SERVICE_ONLY = "policy"
# checkov findings accepted on purpose, each with its reason.
WAIVED = {
    # `mlflow server` reads its stores (a database URI with its password) from options or
    # environment variables only; the values come from Secret references.
    ("CKV_K8S_35", "Deployment.mlflow.mlflow"): "the server reads its stores from env",
    # The tag is pinned: IfNotPresent pulls the same image, without a registry round trip
    # for a multi-hundred-megabyte image on every restart.
    ("CKV_K8S_15", "Deployment.mlflow.mlflow"): "pinned tag, IfNotPresent",
}
# What the ML templates set in their base Deployment (models.md).
TRACKING_URI = "http://mlflow.mlflow.svc.cluster.local:5000"


def built() -> dict[str, dict[str, Any]]:
    objects = kustomize_build(MLFLOW, kubectl=require_tool("kubectl"))
    return {f"{obj['kind']}/{obj['metadata']['name']}": obj for obj in objects}


def pod_spec(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = objects["Deployment/mlflow"]["spec"]["template"]["spec"]
    return spec


def container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (server,) = pod_spec(objects)["containers"]
    assert server["name"] == "mlflow"
    return dict(server)


def makefile_mlflow_version() -> str:
    found = re.search(r"^MLFLOW_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert found, "the Makefile pins no MLFLOW_VERSION"
    return found[1]


@pytest.mark.integration
def test_the_folder_passes_the_review_checks(tmp_path: Path) -> None:
    # Checked as a service's deploy/base would be, under a one-line overlay.
    service = tmp_path / "mlflow"
    shutil.copytree(MLFLOW, service / "deploy" / "base")
    overlay = service / "deploy" / "overlays" / ENVIRONMENT
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources:\n  - ../../base\n")
    tools = CheckTools(kubectl=require_tool("kubectl"))
    results = run_manifest_checks(service, [ENVIRONMENT], lambda _owner: True, Prices(), tools)
    ran = {result.name for result in results}
    assert {f"{check} ({ENVIRONMENT})" for check in ("schema", "policy", "semantics")} <= ran
    not_passed = {
        result.name: [finding.message for finding in result.findings]
        for result in results
        if result.status != CheckStatus.PASSED and result.name != SERVICE_ONLY
    }
    assert not_passed == {}


@pytest.mark.integration
def test_checkov_finds_nothing_beyond_the_waived_checks() -> None:
    checkov = CheckovCli(require_tool("checkov"), skip_checks=["CKV_K8S_43"])
    manifests = {"mlflow.yaml": yaml.safe_dump_all(list(built().values()), sort_keys=False)}
    found = {(failure.check_id, failure.resource) for failure in checkov.scan(manifests)}
    assert found <= set(WAIVED), sorted(found - set(WAIVED))


@pytest.mark.integration
def test_the_server_runs_the_pinned_version_with_its_stores_from_secrets() -> None:
    objects = built()
    assert all(
        obj["metadata"]["namespace"] == "mlflow"
        for ref, obj in objects.items()
        if not ref.startswith("Namespace/")
    )
    pod = pod_spec(objects)
    server = container(objects)
    images = {c["image"] for c in [*pod["initContainers"], server]}
    # The server and `make tools`' local one speak the same REST API.
    assert images == {f"ghcr.io/mlflow/mlflow:v{makefile_mlflow_version()}-full"}
    assert "--serve-artifacts" in server["args"]  # clients never hold the bucket's keys
    for item in [*server["env"], *pod["initContainers"][0]["env"]]:
        if re.search(r"URI|KEY|DESTINATION|ENDPOINT", item["name"]):
            assert "value" not in item, f"{item['name']} is a literal"
            assert "secretKeyRef" in item["valueFrom"], item["name"]
    env = {item["name"]: item for item in server["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]["name"] == (
        "mlflow-backend-store"
    )
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["valueFrom"]["secretKeyRef"]["name"] == (
        "mlflow-artifact-store"
    )
    assert env["MLFLOW_DISABLE_TELEMETRY"]["value"] == "true"
    assert pod["initContainers"][0]["args"] == ["db", "upgrade", "$(MLFLOW_BACKEND_STORE_URI)"]


@pytest.mark.integration
def test_the_generated_services_reach_it_by_the_name_they_use() -> None:
    objects = built()
    users = sorted(
        path.relative_to(REPO / "templates").parts[0]
        for path in (REPO / "templates").glob("*/template/deploy/base/deployment.yaml.jinja")
        if TRACKING_URI in path.read_text(encoding="utf-8")
    )
    assert users, "no template points MLFLOW_TRACKING_URI at the platform's MLflow"
    service = objects["Service/mlflow"]["spec"]
    assert [(port["name"], port["port"]) for port in service["ports"]] == [("http", 5000)]
    assert [p["containerPort"] for p in container(objects)["ports"]] == [5000]
    # MLflow refuses a Host header it does not list (403), the Service's name included.
    (allowed,) = (arg for arg in container(objects)["args"] if arg.startswith("--allowed-hosts="))
    assert TRACKING_URI.removeprefix("http://") in allowed.partition("=")[2].split(",")
    # Its NetworkPolicy admits the namespaces of those services, on that port.
    policy = objects["NetworkPolicy/mlflow"]["spec"]
    (rule,) = policy["ingress"]
    assert [port["port"] for port in rule["ports"]] == [5000]
    (source,) = rule["from"]
    wanted = source["namespaceSelector"]["matchLabels"]
    for template in users:
        text = REPO / "templates" / template / "template/deploy/base/namespace.yaml.jinja"
        namespace = yaml.safe_load(text.read_text(encoding="utf-8").replace("{{ name }}", "svc"))
        assert wanted.items() <= namespace["metadata"]["labels"].items(), template
